"""`POST /api/v2/prodlytics`: Datadog Product Analytics server-side events.

One JSON object, or an array of them validated all-or-nothing. Answers 202 `{}` once the events are
durable; every refusal uses the intake error body and says which field is wrong and why.
"""

from __future__ import annotations

import logging
from typing import Literal

import msgspec
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from sextant.config import Limits
from sextant.control.directory import Directory, Principal
from sextant.core.events import EventBatch
from sextant.core.timeutil import now_ms
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply
from sextant.edge.requests import request_id
from sextant.faces.datadog.auth import AuthFailure, require_api_key
from sextant.faces.datadog.errors import IntakeErrors, intake_error
from sextant.faces.datadog.server_side_events import InvalidEvent, ServerSideEvents
from sextant.ingest.writer import GroupCommitWriter, submit

log = logging.getLogger("sextant.datadog")
PATH = "/api/v2/prodlytics"
_ACCEPTED_START: Message = {
    "type": "http.response.start",
    "status": 202,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
}
_ACCEPTED_BODY: Message = {"type": "http.response.body", "body": b"{}"}
_decode = msgspec.json.Decoder().decode


# The documented request shape (for the OpenAPI document). Any other top-level field is a custom attribute.
class IdRef(msgspec.Struct):
    id: str


class EventName(msgspec.Struct):
    name: str


class ServerSideEvent(msgspec.Struct, forbid_unknown_fields=False):
    """A Product Analytics server-side event; additional fields are kept as searchable attributes."""

    application: IdRef
    event: EventName
    type: Literal["server"]
    usr: IdRef | None = None
    account: IdRef | None = None
    session: IdRef | None = None
    date: int | None = None


class Accepted(msgspec.Struct):
    """Always the empty object."""


class ProductAnalyticsIntake:
    def __init__(self, directory: Directory, writer: GroupCommitWriter, limits: Limits) -> None:
        self._directory = directory
        self._writer = writer
        self._limits = limits

    def endpoints(self) -> list[Endpoint]:
        error = Reply("Error", IntakeErrors)
        return [
            Endpoint(
                method="POST",
                path=PATH,
                asgi=self.asgi,
                summary="Send server-side events to Product Analytics (one object or an array)",
                tag="Datadog Product Analytics",
                request=ServerSideEvent,
                responses={
                    202: Reply("Accepted: durable and visible to queries within one second", Accepted),
                    400: error,
                    401: error,
                    403: error,
                    413: error,
                    415: error,
                    503: error,
                },
                auth_headers=("DD-API-KEY",),
            )
        ]

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The intake as a bare ASGI handler: the hot path skips the framework's request objects, and
        keeps to one coroutine between the server and the wait for durability."""
        try:
            headers = Headers(scope=scope)
            caller = self._caller(headers)
            if isinstance(caller, Response):
                refusal: Response | None = caller
            else:
                limits = self._limits
                body = await read_body(
                    receive,
                    headers,
                    max_bytes=limits.intake_body_bytes,
                    max_decoded=limits.intake_decoded_bytes,
                )
                refusal = await self._accept(body, caller.org_id)
        except ClientDisconnect:
            return
        except BodyError as exc:
            refusal = intake_error(exc.status, str(exc))
        except Exception:
            rid = request_id(scope)
            log.exception("unexpected failure serving POST %s (request id %s)", PATH, rid)
            refusal = intake_error(500, f"Internal Server Error (request id {rid})")
        if refusal is None:
            await send(_ACCEPTED_START)
            await send(_ACCEPTED_BODY)
        else:
            await refusal(scope, receive, send)

    def _caller(self, headers: Headers) -> Principal | Response:
        """Who sends, or the refusal to answer."""
        try:
            return require_api_key(headers, self._directory, "events_write")
        except AuthFailure as exc:
            return intake_error(exc.status, exc.detail)

    async def _accept(self, body: bytes, org_id: int) -> Response | None:
        """Store the events, returning once they are durable; or the refusal to answer."""
        try:
            batch = self._translate(body, org_id)
        except InvalidEvent as exc:
            return intake_error(400, str(exc))
        busy = await submit(self._writer, batch, "events")
        if busy is not None:
            return intake_error(503, busy.message, headers=busy.headers)
        return None

    def _translate(self, body: bytes, org_id: int) -> EventBatch:
        batch = EventBatch()
        now = now_ms()
        events = ServerSideEvents(self._directory.application, org_id, self._limits.json_depth)
        if events.add_body(batch, body, now):
            return batch
        try:
            document = _decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidEvent(f"Malformed payload: body is not valid JSON ({exc})") from exc
        except RecursionError as exc:
            raise InvalidEvent(
                f"Malformed payload: JSON is nested deeper than {self._limits.json_depth} levels"
            ) from exc
        if isinstance(document, dict):
            items, batched = [document], False
        elif isinstance(document, list):
            if not document:
                raise InvalidEvent("Malformed payload: the batch is an empty array; send at least one event")
            items, batched = document, True
        else:
            raise InvalidEvent("Malformed payload: body must be a JSON object or an array of objects")
        for index, item in enumerate(items):
            try:
                events.add(batch, item, now)
            except InvalidEvent as exc:
                raise InvalidEvent(f"event[{index}]: {exc}" if batched else str(exc)) from None
        return batch
