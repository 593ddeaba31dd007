"""Datadog Product Analytics server-side events → core events: the validation and flattening that the
intake (`POST /api/v2/prodlytics`) and `sextant import events` share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from sextant.control.apps import Application
from sextant.core.events import AttributeLimitError, EventBatch, flatten_attributes
from sextant.core.timeutil import accepted_times, check_event_time
from sextant.faces.datadog._events import translate as _native_translate

if TYPE_CHECKING:
    from sextant.faces.datadog._events import NativeColumns

SOURCE = "product_analytics"


class InvalidEvent(ValueError):
    pass


class ServerSideEvents:
    """Validates events of one organization and adds them to a batch; says which field is wrong and why."""

    def __init__(
        self, applications: Callable[[str], Application | None], org_id: int, json_depth: int
    ) -> None:
        self._applications = applications
        self._org_id = org_id
        self._json_depth = json_depth
        # The applications checked and accepted, by id as sent -> id as stored: each is checked once per
        # instance, and these are what the native pass (_events.c) takes as known.
        self.stored_ids: dict[str, str] = {}

    def add(self, batch: EventBatch, item: Any, now: int) -> None:
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
        stored_id = self._stored_id(app_id)
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
            attributes = flatten_attributes(item, max_depth=self._json_depth)
        except AttributeLimitError as exc:
            raise InvalidEvent(str(exc)) from None
        batch.add(
            org_id=self._org_id,
            time_ms=time_ms,
            source=SOURCE,
            name=name,
            type="server",
            application_id=stored_id,
            usr_id=usr,
            account_id=account,
            session_id=session,
            attributes=attributes,
        )

    def translate_body(self, body: bytes, now: int) -> EventBatch | None:
        """Every event of a request body at once, parsed and flattened in native code; None when the body
        needs `add` (anything unusual, and every invalid event: `add` says what is wrong with which)."""
        earliest, latest = accepted_times(now)
        while True:
            translated = _native_translate(body, self._json_depth, self.stored_ids, now, earliest, latest)
            if not isinstance(translated, str):
                return None if translated is None else batch_of(self._org_id, translated)
            # An application the native pass has not seen: checked here once, then it is known.
            try:
                self._stored_id(translated)
            except InvalidEvent:
                return None

    def _stored_id(self, app_id: str) -> str:
        """The stored id of the application if this organization may send to it, else InvalidEvent saying
        why not."""
        stored = self.stored_ids.get(app_id)
        if stored is None:
            stored = self.stored_ids[app_id] = self._check_application(app_id).id
        return stored

    def _check_application(self, app_id: str) -> Application:
        app = self._applications(app_id)
        if app is None:
            raise InvalidEvent(
                f"application.id {app_id!r} is not a known application (see `sextant apps list`)"
            )
        if app.org_id != self._org_id:
            raise InvalidEvent(f"application.id {app_id!r} belongs to another organization than this API key")
        if not app.enabled:
            raise InvalidEvent(f"application.id {app_id!r} is disabled for Product Analytics")
        return app


def batch_of(org_id: int, columns: NativeColumns) -> EventBatch:
    """The batch of the native pass's columns (see _events.translate)."""
    times, names, app_ids, usrs, accounts, sessions, attributes, array_paths = columns
    return EventBatch.of_rows(
        org_id=org_id,
        source=SOURCE,
        type="server",
        time_ms=times,
        name=names,
        application_id=app_ids,
        usr_id=usrs,
        account_id=accounts,
        session_id=sessions,
        attributes=attributes,
        array_paths=array_paths,
    )


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
