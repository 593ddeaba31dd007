"""`POST /api/v2/prodlytics`: Datadog Product Analytics server-side events.

One JSON object, or an array of them validated all-or-nothing. Answers 202 `{}` once the events are
durable; every refusal uses the intake error body and says which field is wrong and why.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from sextant.config import Limits
from sextant.control.apps import Application
from sextant.control.directory import Directory
from sextant.core.events import AttributeLimitError, EventBatch, flatten_attributes
from sextant.core.timeutil import check_event_time, now_ms
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply
from sextant.faces.datadog.auth import AuthFailure, require_api_key
from sextant.faces.datadog.errors import IntakeErrors, guarded, intake_error
from sextant.ingest.writer import GroupCommitWriter, WriteQueueFull, WriterStopped

PATH = "/api/v2/prodlytics"
SOURCE = "product_analytics"
_ACCEPTED = Response(b"{}", 202, media_type="application/json")
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


class InvalidEvent(ValueError):
    pass


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
                handler=guarded(self.submit, intake_error),
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

    async def submit(self, request: Request) -> Response:
        try:
            principal = require_api_key(request, self._directory, "events_write")
        except AuthFailure as exc:
            return intake_error(exc.status, exc.detail)
        limits = self._limits
        try:
            body = await read_body(
                request, max_bytes=limits.intake_body_bytes, max_decoded=limits.intake_decoded_bytes
            )
        except BodyError as exc:
            return intake_error(exc.status, str(exc))
        try:
            batch = self._translate(body, principal.org_id)
        except InvalidEvent as exc:
            return intake_error(400, str(exc))
        try:
            await self._writer.write(batch)
        except WriteQueueFull as exc:
            return intake_error(
                503,
                "Too many events are waiting to be written; retry shortly",
                headers={"Retry-After": str(exc.retry_after)},
            )
        except WriterStopped:
            return intake_error(
                503, "The server is shutting down; retry shortly", headers={"Retry-After": "1"}
            )
        return _ACCEPTED

    def _translate(self, body: bytes, org_id: int) -> EventBatch:
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
        batch = EventBatch()
        now = now_ms()
        apps: dict[str, Application] = {}
        for index, item in enumerate(items):
            try:
                self._add_event(batch, item, org_id, now, apps)
            except InvalidEvent as exc:
                raise InvalidEvent(f"event[{index}]: {exc}" if batched else str(exc)) from None
        return batch

    def _add_event(
        self, batch: EventBatch, item: Any, org_id: int, now: int, apps: dict[str, Application]
    ) -> None:
        if not isinstance(item, dict):
            raise InvalidEvent("must be a JSON object")
        app_id = _required_id(item, "application", "id")
        name = _required_id(item, "event", "name")
        kind = item.get("type")
        if kind != "server":
            if kind is None:
                raise InvalidEvent('type is required and must be "server"')
            raise InvalidEvent(
                f'type must be "server" for server-side events, not {msgspec.json.encode(kind).decode()}'
            )
        usr = _optional_id(item, "usr")
        account = _optional_id(item, "account")
        session = _optional_id(item, "session")
        if usr is None and account is None and session is None:
            raise InvalidEvent("at least one of usr.id, account.id or session.id is required")
        app = apps.get(app_id)
        if app is None:
            app = self._check_application(app_id, org_id)
            apps[app_id] = app
        time_ms = now
        if "date" in item:
            date = item["date"]
            if not isinstance(date, int) or isinstance(date, bool):
                raise InvalidEvent("date must be an integer number of milliseconds since the epoch")
            problem = check_event_time(date, now)
            if problem is not None:
                raise InvalidEvent(f"date {date} {problem}")
            time_ms = date
        try:
            attributes = flatten_attributes(item, max_depth=self._limits.json_depth)
        except AttributeLimitError as exc:
            raise InvalidEvent(str(exc)) from None
        batch.add(
            org_id=org_id,
            time_ms=time_ms,
            source=SOURCE,
            name=name,
            type="server",
            application_id=app.id,
            usr_id=usr,
            account_id=account,
            session_id=session,
            attributes=attributes,
        )

    def _check_application(self, app_id: str, org_id: int) -> Application:
        app = self._directory.application(app_id)
        if app is None:
            raise InvalidEvent(
                f"application.id {app_id!r} is not a known application (see `sextant apps list`)"
            )
        if app.org_id != org_id:
            raise InvalidEvent(f"application.id {app_id!r} belongs to another organization than this API key")
        if not app.enabled:
            raise InvalidEvent(f"application.id {app_id!r} is disabled for Product Analytics")
        return app


def _required_id(item: dict[str, Any], parent: str, field: str) -> str:
    obj = item.get(parent)
    if obj is None:
        raise InvalidEvent(f"{parent}.{field} is required")
    if not isinstance(obj, dict):
        raise InvalidEvent(f"{parent} must be an object with a string {field!r}")
    value = obj.get(field)
    if value is None:
        raise InvalidEvent(f"{parent}.{field} is required")
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{parent}.{field} must be a non-empty string")
    return value


def _optional_id(item: dict[str, Any], parent: str) -> str | None:
    if parent not in item:
        return None
    return _required_id(item, parent, "id")
