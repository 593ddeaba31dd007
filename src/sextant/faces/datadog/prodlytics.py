"""`POST /api/v2/prodlytics`: Datadog Product Analytics server-side events.

One JSON object, or an array of them validated all-or-nothing. Answers 202 `{}` once the events are
durable; every refusal uses the intake error body and says which field is wrong and why.
"""

from __future__ import annotations

import logging
from typing import Literal

import msgspec
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from sextant.config import Limits
from sextant.control.directory import Directory
from sextant.core.events import EventBatch
from sextant.core.timeutil import accepted_times, now_ms
from sextant.edge.body import BodyError, decode_content, read_raw_body
from sextant.edge.endpoints import Endpoint, Reply
from sextant.edge.requests import request_id
from sextant.faces.datadog._events import translate_request as _translate_request
from sextant.faces.datadog.auth import AuthFailure, check_api_key
from sextant.faces.datadog.errors import IntakeErrors, intake_error
from sextant.faces.datadog.server_side_events import InvalidEvent, ServerSideEvents, batch_of
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
        # While the directory stays as it was (its generation): one validator per organization, whose
        # applications are then checked once, not on every request; and the keys found valid for this
        # intake (raw DD-API-KEY bytes -> organization and its validator's known applications), which
        # the native path (_events.translate_request) looks up.
        self._validators: dict[int, ServerSideEvents] = {}
        self._routes: dict[bytes, tuple[int, dict[str, str]]] = {}
        self._generation = -1
        # A plain body at most this large, in one message, may take the native path.
        self._native_body_bytes = min(limits.intake_body_bytes, limits.intake_decoded_bytes)

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
        refusal: Response | None
        try:
            message = await receive()
            now = now_ms()
            earliest, latest = accepted_times(now)
            if self._directory.generation != self._generation:
                self._forget()
            # The usual request (a known key, a small plain body of valid events of known applications) in
            # one native call; anything else takes the general path, which says what is wrong.
            native = _translate_request(
                scope["headers"],
                message,
                self._routes,
                now,
                earliest,
                latest,
                self._native_body_bytes,
                self._limits.json_depth,
            )
            if native is None:
                batch = await self._general(scope, receive, message, now)
            else:
                batch = batch_of(*native)
            busy = await submit(self._writer, batch, "events")
            refusal = None if busy is None else intake_error(503, busy.message, headers=busy.headers)
        except ClientDisconnect:
            return
        except AuthFailure as exc:
            refusal = intake_error(exc.status, exc.detail)
        except BodyError as exc:
            refusal = intake_error(exc.status, str(exc))
        except InvalidEvent as exc:
            refusal = intake_error(400, str(exc))
        except Exception:
            rid = request_id(scope)
            log.exception("unexpected failure serving POST %s (request id %s)", PATH, rid)
            refusal = intake_error(500, f"Internal Server Error (request id {rid})")
        if refusal is None:
            await send(_ACCEPTED_START)
            await send(_ACCEPTED_BODY)
        else:
            await refusal(scope, receive, send)

    async def _general(self, scope: Scope, receive: Receive, first: Message, now: int) -> EventBatch:
        """Every check in order, with its error; the body's first message is already received."""
        api_key, content_length, content_encoding = _intake_headers(scope)
        caller = check_api_key(api_key, self._directory, "events_write")
        events = self._events_of(caller.org_id)
        assert api_key is not None
        # The key is valid for this intake: its next requests can take the native path.
        if len(self._routes) > 10_000:
            self._routes.clear()
        self._routes[api_key.encode("latin-1")] = (caller.org_id, events.stored_ids)
        limits = self._limits
        raw = await read_raw_body(receive, content_length, limits.intake_body_bytes, first=first)
        body = decode_content(raw, content_encoding, limits.intake_decoded_bytes)
        return self._translate(body, caller.org_id, now)

    def _translate(self, body: bytes, org_id: int, now: int) -> EventBatch:
        events = self._events_of(org_id)
        batch = events.translate_body(body, now)
        if batch is not None:
            return batch
        batch = EventBatch()
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

    def _forget(self) -> None:
        """The control database changed: keys, applications and what was derived from them are read anew."""
        self._validators.clear()
        self._routes.clear()
        self._generation = self._directory.generation

    def _events_of(self, org_id: int) -> ServerSideEvents:
        if self._directory.generation != self._generation:
            self._forget()
        validators = self._validators
        events = validators.get(org_id)
        if events is None:
            if len(validators) > 10_000:
                validators.clear()
            events = ServerSideEvents(self._directory.application, org_id, self._limits.json_depth)
            validators[org_id] = events
        return events


def _intake_headers(scope: Scope) -> tuple[str | None, str | None, str]:
    """DD-API-KEY, Content-Length and Content-Encoding (the first of each): one pass over the raw headers,
    cheaper than a header mapping for the three the intake reads."""
    api_key = content_length = content_encoding = None
    for name, value in scope["headers"]:
        if name == b"dd-api-key":
            if api_key is None:
                api_key = value.decode("latin-1")
        elif name == b"content-length":
            if content_length is None:
                content_length = value.decode("latin-1")
        elif name == b"content-encoding" and content_encoding is None:
            content_encoding = value.decode("latin-1")
    return api_key, content_length, content_encoding or ""
