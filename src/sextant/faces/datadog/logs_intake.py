"""`POST /api/v2/logs`: the Datadog logs intake.

One JSON log object, or an array of them validated all-or-nothing. Each log becomes one event of source
`logs`. Its reserved attributes are resolved as Datadog's preprocessing for JSON logs does and kept among
its attributes under their reserved names (`message`, `status`, `service`, `host`, `tags`), which is
where the logs search (`logs_search.py`) finds them; every other attribute is kept as sent, flattened.
Answers 202 `{}` once the logs are durable; every refusal uses the intake error body and says which log
and which field is wrong.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.datastructures import Headers, QueryParams
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from sextant.config import Limits
from sextant.control.directory import Directory, Principal
from sextant.core.events import STANDARD_PATHS, AttributeLimitError, EventBatch, flatten_attributes
from sextant.core.metrics import normalize_tags
from sextant.core.timeutil import FUTURE_TOLERANCE_MS, check_event_time, now_ms
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply
from sextant.edge.requests import request_id
from sextant.faces.datadog.auth import API_KEY_HEADER, AuthFailure, require_api_key
from sextant.faces.datadog.errors import IntakeErrors, intake_error
from sextant.faces.datadog.prodlytics import Accepted
from sextant.ingest.writer import GroupCommitWriter, submit
from sextant.storage.backend import Backend

log = logging.getLogger("sextant.datadog")
PATH = "/api/v2/logs"
SOURCE = "logs"

# Where a stored log keeps its reserved attributes.
MESSAGE = "message"
STATUS = "status"
SERVICE = "service"
HOST = "host"
TAGS = "tags"

# Datadog's preprocessing for JSON logs: the first of these attributes present gives the reserved one.
HOST_ATTRIBUTES = ("host", "hostname", "syslog.hostname")
SERVICE_ATTRIBUTES = ("service", "syslog.appname")
STATUS_ATTRIBUTES = ("status", "severity", "level", "syslog.severity")
DATE_ATTRIBUTES = (
    "@timestamp",
    "timestamp",
    "_timestamp",
    "Timestamp",
    "eventTime",
    "date",
    "published_date",
    "syslog.timestamp",
)
# Fields that must be text when present.
_TEXT_FIELDS = ("message", "ddsource", "ddtags", "hostname", "host", "service")
DEFAULT_STATUS = "info"
# Syslog severities 0-7, as Datadog's status remapper names them.
_SEVERITIES = ("emerg", "alert", "critical", "error", "warning", "notice", "info", "debug")
# Query parameters of Datadog's own senders (browser SDK, drains) that carry no log attribute.
_TRANSPORT_PREFIX = "dd-"
_QUERY_KEY = "dd-api-key"

# The store keeps these paths in text columns (the search reads them there): a log's values at these
# paths go to the columns, in the order `EventBatch.add` takes them.
_STANDARD_ORDER = ("event.name", "type", "application.id", "usr.id", "account.id", "session.id")
assert set(_STANDARD_ORDER) == STANDARD_PATHS, "a standard path without its column here"

_ACCEPTED_START: Message = {
    "type": "http.response.start",
    "status": 202,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
}
_ACCEPTED_BODY: Message = {"type": "http.response.body", "body": b"{}"}
_decode = msgspec.json.Decoder().decode
_decode_raw_items = msgspec.json.Decoder(list[msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode
_RFC3164 = re.compile(r"([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class InvalidLog(ValueError):
    """A log the intake refuses (400)."""


class LogTooLarge(ValueError):
    """A request over a per-log or per-request count limit (413)."""


# The documented request shape (for the OpenAPI document). Any other field is a custom attribute.
class HTTPLogItem(msgspec.Struct, forbid_unknown_fields=False):
    """A log sent over HTTP; additional fields are kept as searchable attributes."""

    message: str | None = None
    ddsource: str | None = None
    ddtags: str | None = None
    hostname: str | None = None
    service: str | None = None
    status: str | int | None = None


def status_of(value: Any) -> str:
    """A status value as Datadog's status remapper maps it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _SEVERITIES[value] if 0 <= value <= 7 else DEFAULT_STATUS
    if not isinstance(value, str):
        return DEFAULT_STATUS
    text = value.strip().lower()
    for prefixes, status in (
        (("emerg", "f"), "emerg"),
        (("a",), "alert"),
        (("c",), "critical"),
        (("err",), "error"),
        (("w",), "warning"),
        (("n",), "notice"),
        (("i",), "info"),
        (("d", "t", "v"), "debug"),
        (("o", "s"), "ok"),
    ):
        if text.startswith(prefixes):
            return status
    return DEFAULT_STATUS


def date_of(value: Any, now: int) -> int | None:
    """Epoch milliseconds of a date in a format Datadog recognizes (epoch milliseconds, ISO 8601,
    RFC 3164), or None when it is in none of them."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return _rfc3164(text, now)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _rfc3164(text: str, now: int) -> int | None:
    """`Mmm dd hh:mm:ss` (syslog, no year, UTC): the latest such time not past the future tolerance."""
    m = _RFC3164.fullmatch(text)
    if m is None or m.group(1) not in _MONTHS:
        return None
    month = _MONTHS.index(m.group(1)) + 1
    day, hour, minute, second = (int(g) for g in m.groups()[1:])
    year = datetime.fromtimestamp(now / 1000, UTC).year
    for candidate in (year, year - 1):
        try:
            ms = int(datetime(candidate, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)
        except ValueError:  # Feb 29 of a common year, Apr 31, hour 25...
            continue
        if ms <= now + FUTURE_TOLERANCE_MS:
            return ms
    return None


def split_tags(ddtags: str) -> list[str]:
    """`ddtags` ("env:prod,team:core") as tags, blank entries dropped."""
    return [tag for tag in (part.strip() for part in ddtags.split(",")) if tag]


class RequestDefaults:
    """What the query string adds to every log of a request: `ddtags`, and the other parameters as
    attributes (`ddsource`, `service`, `host`, custom ones), which a log's own fields override."""

    def __init__(self, query: QueryParams) -> None:
        self.tags = [tag for value in query.getlist("ddtags") for tag in split_tags(value)]
        self.attributes = {
            key: value
            for key, value in query.items()
            if key != "ddtags" and not key.lower().startswith(_TRANSPORT_PREFIX)
        }


class LogTranslator:
    """Validates the logs of one request and adds them to a batch; says which field is wrong and why."""

    def __init__(self, org_id: int, json_depth: int, defaults: RequestDefaults) -> None:
        self._org_id = org_id
        self._json_depth = json_depth
        self._defaults = defaults

    def add(self, batch: EventBatch, item: Any, now: int) -> None:
        if not isinstance(item, dict):
            raise InvalidLog("must be a JSON object")
        if self._defaults.attributes:
            item = self._defaults.attributes | item
        for name in _TEXT_FIELDS:
            value = item.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidLog(f"{name} must be a string, not {_json(value)}")
        status = item.get("status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, (str, int))):
            raise InvalidLog(f"status must be a string or a syslog severity from 0 to 7, not {_json(status)}")
        sent_tags = item.get(TAGS)
        if not (sent_tags is None or isinstance(sent_tags, str) or _strings(sent_tags)):
            raise InvalidLog(
                "tags holds the log's tags: send a string (like ddtags) or an array of strings, "
                f"not {_json(sent_tags)}"
            )
        try:
            attributes = flatten_attributes(item, max_depth=self._json_depth, skip=frozenset())
        except AttributeLimitError as exc:
            raise InvalidLog(str(exc)) from None
        time_ms = self._time(attributes, now)
        tags = self._tags(attributes)
        host = _first(attributes, HOST_ATTRIBUTES)
        service = _first(attributes, SERVICE_ATTRIBUTES)
        status_source = next(
            (attributes[n] for n in STATUS_ATTRIBUTES if attributes.get(n) is not None), None
        )
        for name in (MESSAGE, HOST, SERVICE):
            if name in attributes and attributes[name] is None:
                del attributes[name]  # a null reserved field is an absent one
        if host is not None:
            attributes[HOST] = host
        if service is not None:
            attributes[SERVICE] = service
        attributes[STATUS] = DEFAULT_STATUS if status_source is None else status_of(status_source)
        attributes[TAGS] = list(tags)
        columns = [_column_text(attributes, path) for path in _STANDARD_ORDER]
        event_name, kind, application_id, usr_id, account_id, session_id = columns
        batch.add(
            org_id=self._org_id,
            time_ms=time_ms,
            source=SOURCE,
            # A log has no event name or type of its own unless it sends one; both columns are NOT NULL.
            name=event_name or "",
            type=kind or "",
            application_id=application_id,
            usr_id=usr_id,
            account_id=account_id,
            session_id=session_id,
            attributes=attributes,
        )

    def _time(self, attributes: dict[str, Any], now: int) -> int:
        for name in DATE_ATTRIBUTES:
            if name not in attributes:
                continue
            value = attributes[name]
            time_ms = date_of(value, now)
            if time_ms is None:
                continue  # not a date: Datadog keeps the attribute and looks further
            problem = check_event_time(time_ms, now)
            if problem is not None:
                raise InvalidLog(
                    f"{name} {_json(value)} (as epoch milliseconds: {time_ms}) {problem}; "
                    "log dates are epoch milliseconds, ISO 8601 or RFC 3164"
                )
            return time_ms
        return now

    def _tags(self, attributes: dict[str, Any]) -> tuple[str, ...]:
        tags = list(self._defaults.tags)
        ddtags = attributes.pop("ddtags", None)
        if ddtags is not None:
            tags.extend(split_tags(ddtags))
        source = attributes.pop("ddsource", None)
        if source:
            tags.append(f"source:{source}")
        sent = attributes.get(TAGS)  # checked in `add`: a string or a list of strings
        if isinstance(sent, str):
            tags.extend(split_tags(sent))
        elif sent is not None:
            tags.extend(t for t in sent if t)
        return normalize_tags(tags)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _first(attributes: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str):
            return value
    return None


def _column_text(attributes: dict[str, Any], path: str) -> str | None:
    """Move a log's value at a standard path into its text column; a list (the path was reached through
    an array) stays an attribute."""
    value = attributes.get(path)
    if isinstance(value, list):
        return None
    attributes.pop(path, None)
    if value is None or isinstance(value, str):
        return value
    return _encode(value).decode()


def _json(value: Any) -> str:
    text = _encode(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


class DatadogLogsIntake:
    def __init__(
        self, directory: Directory, writer: GroupCommitWriter, store: Backend, limits: Limits
    ) -> None:
        self._directory = directory
        self._writer = writer
        self._store = store
        self._limits = limits

    def endpoints(self) -> list[Endpoint]:
        error = Reply("Error", IntakeErrors)
        return [
            Endpoint(
                method="POST",
                path=PATH,
                asgi=self.asgi,
                summary="Send logs (one object or an array of up to 1000); query parameters ddtags, "
                "ddsource, service, host and custom attributes apply to every log",
                tag="Datadog Logs",
                request=HTTPLogItem,
                responses={
                    202: Reply("Accepted: durable and visible to searches within one second", Accepted),
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
        """The intake as a bare ASGI handler, like the other intakes' hot paths."""
        try:
            headers = Headers(scope=scope)
            query = QueryParams(scope["query_string"])
            caller = self._caller(headers, query)
            if isinstance(caller, Response):
                refusal: Response | None = caller
            else:
                body = await read_body(
                    receive,
                    headers,
                    max_bytes=self._limits.logs_body_bytes,
                    max_decoded=self._limits.logs_decoded_bytes,
                )
                refusal = await self._accept(body, caller.org_id, RequestDefaults(query))
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

    def _caller(self, headers: Headers, query: QueryParams) -> Principal | Response:
        """Who sends (the DD-API-KEY header, else the dd-api-key query parameter log drains use)."""
        if API_KEY_HEADER not in headers and _QUERY_KEY in query:
            headers = Headers(raw=[(API_KEY_HEADER.encode(), query[_QUERY_KEY].encode())])
        try:
            return require_api_key(headers, self._directory, "logs_write")
        except AuthFailure as exc:
            return intake_error(exc.status, exc.detail)

    async def _accept(self, body: bytes, org_id: int, defaults: RequestDefaults) -> Response | None:
        """Store the logs, returning once they are durable; or the refusal to answer."""
        try:
            batch = self._translate(body, org_id, defaults)
        except InvalidLog as exc:
            return intake_error(400, str(exc))
        except LogTooLarge as exc:
            return intake_error(413, str(exc))
        busy = await submit(self._writer, batch, "logs")
        if busy is not None:
            return intake_error(503, busy.message, headers=busy.headers)
        return None

    def _items(self, body: bytes) -> tuple[list[Any], bool]:
        """The logs of a body and whether it was an array; refuses what is not JSON or over a limit."""
        limit = self._limits.log_entry_bytes
        try:
            if body.lstrip()[:1] != b"[":
                size = len(body.strip())
                if size > limit:
                    raise LogTooLarge(f"the log is {size} bytes; a log may be at most {limit} bytes")
                return [_decode(body)], False
            if len(body) <= limit:
                # No log of this body can be over the per-log limit: no need to measure each one.
                items: list[Any] = _decode(body)
                self._check_count(len(items))
            else:
                raw = _decode_raw_items(body)
                self._check_count(len(raw))
                for index, one in enumerate(raw):
                    if len(one) > limit:
                        raise LogTooLarge(
                            f"log[{index}] is {len(one)} bytes; a log may be at most {limit} bytes"
                        )
                items = [_decode(one) for one in raw]
        except msgspec.DecodeError as exc:
            raise InvalidLog(f"Malformed payload: body is not valid JSON ({exc})") from exc
        except RecursionError as exc:
            raise InvalidLog(
                f"Malformed payload: JSON is nested deeper than {self._limits.json_depth} levels"
            ) from exc
        if not items:
            raise InvalidLog("Malformed payload: the batch is an empty array; send at least one log")
        return items, True

    def _check_count(self, count: int) -> None:
        if count > self._limits.logs_per_request:
            raise LogTooLarge(
                f"the batch holds {count} logs; at most {self._limits.logs_per_request} logs "
                "are accepted per request"
            )

    def _translate(self, body: bytes, org_id: int, defaults: RequestDefaults) -> EventBatch:
        items, batched = self._items(body)
        if not batched and not isinstance(items[0], dict):
            raise InvalidLog("Malformed payload: body must be a JSON object or an array of objects")
        batch = EventBatch()
        now = now_ms()
        translator = LogTranslator(org_id, self._limits.json_depth, defaults)
        for index, item in enumerate(items):
            try:
                translator.add(batch, item, now)
            except InvalidLog as exc:
                raise InvalidLog(f"log[{index}]: {exc}" if batched else str(exc)) from None
        return batch
