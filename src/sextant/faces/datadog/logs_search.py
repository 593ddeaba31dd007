"""Datadog's "Search logs": `POST /api/v2/logs/events/search` and `GET /api/v2/logs/events`.

Both take the same search (filter {query, from, to, indexes}, sort, page {limit, cursor}) and answer
`LogsListResponse` exactly as Datadog's clients parse it. The query is the Log Explorer's search syntax:
free text searches the message, bare keys search tags except the reserved attributes (`host`, `service`,
`status`, `tags`), `@path` any attribute. Results come from the event store's list query over events of
source `logs`, where the intake (`logs_intake.py`) left them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlencode

import msgspec
import pyarrow as pa
from starlette.requests import Request
from starlette.responses import Response

from sextant.control.directory import Directory
from sextant.core.events import STANDARD_PATHS
from sextant.core.timeutil import now_ms
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import guarded
from sextant.edge.requests import request_id
from sextant.faces.datadog.analytics import MAX_QUERY_BODY
from sextant.faces.datadog.analytics_request import RequestError, decode
from sextant.faces.datadog.auth import AuthFailure, require_app_key
from sextant.faces.datadog.errors import APIErrorResponse, api_error
from sextant.faces.datadog.logs_intake import HOST, MESSAGE, SERVICE, SOURCE, STATUS, TAGS
from sextant.query.events import EventListQuery
from sextant.query.filters import Field, Filter
from sextant.query.planning import QUERY_TIMEOUT_S
from sextant.query.search_syntax import SearchSyntaxError, Vocabulary, parse_search
from sextant.storage.backend import Backend, QueryTimeout

SEARCH_PATH = "/api/v2/logs/events/search"
LIST_PATH = "/api/v2/logs/events"
# The Log Explorer's meaning of bare words and keys, over the attributes the intake stores.
LOGS_VOCABULARY = Vocabulary(
    free_text=Field(MESSAGE), tags=Field(TAGS), reserved=frozenset({HOST, SERVICE, STATUS, TAGS})
)
DEFAULT_FROM = "now-15m"
DEFAULT_TO = "now"
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
# Shown at the top of a log rather than among its attributes.
_TOP_LEVEL = frozenset({MESSAGE, STATUS, HOST, TAGS})
_DATE_MATH = re.compile(r"(now)?(?:([+-])(\d+)(s|m|h|d|w))?")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_decode_json = msgspec.json.Decoder().decode


# --- the request shape (Datadog's `LogsListRequest`; unknown fields are ignored, as clients add new ones)


class LogsQueryFilter(msgspec.Struct, rename={"start": "from"}):
    start: str | int | None = None
    to: str | int | None = None
    query: str | None = None
    indexes: list[str] | None = None
    storage_tier: str | None = None


class LogsListRequestPage(msgspec.Struct):
    cursor: str | None = None
    limit: int | None = None


class LogsListRequest(msgspec.Struct):
    """The body of `POST /api/v2/logs/events/search`; every field is optional."""

    filter: LogsQueryFilter | None = None
    page: LogsListRequestPage | None = None
    sort: str | None = None
    # Deprecated by Datadog and without effect there either: accepted and ignored.
    options: dict[str, Any] | None = None


class LogsListResponse(msgspec.Struct, omit_defaults=True):
    """`LogsListResponse`: `data` (logs), `links.next` and `meta.page.after` while more logs match."""

    data: list[dict[str, Any]]
    meta: dict[str, Any]
    links: dict[str, str] | None = None


@dataclass(frozen=True)
class _Cursor:
    """Where the next page starts: the time window of the first page (so that relative times do not
    move under a paginated search) and how many logs came before."""

    offset: int
    start_ms: int
    end_ms: int

    def encode(self) -> str:
        raw = msgspec.json.encode([self.offset, self.start_ms, self.end_ms])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def decode(text: str) -> _Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            offset, start_ms, end_ms = msgspec.json.decode(raw, type=tuple[int, int, int])
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise RequestError(
                f"page cursor {text[:40]!r} is not one this server gave: pass meta.page.after of the "
                "previous page"
            ) from None
        if offset < 0 or start_ms >= end_ms:
            raise RequestError(f"page cursor {text[:40]!r} is not one this server gave")
        return _Cursor(offset, start_ms, end_ms)


@dataclass(frozen=True)
class LogSearch:
    """A search, whichever endpoint it came through."""

    query: str
    filter: Filter
    start_ms: int
    end_ms: int
    sort: str  # as the request wrote it, for the next link
    sort_field: Field | None
    descending: bool
    limit: int
    offset: int
    indexes: list[str] | None

    def list_query(self, org_id: int) -> EventListQuery:
        return EventListQuery(
            org_id=org_id,
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            filter=self.filter,
            columns=(),
            limit=self.limit,
            sort_field=self.sort_field,
            descending=self.descending,
            source=SOURCE,
            offset=self.offset,
        )


def parse_time(value: str | int | None, default: str, what: str, now: int) -> int:
    """Epoch milliseconds of a time as Datadog's logs search takes it: epoch milliseconds, ISO 8601, or
    date math (`now`, `now-15m`, `-2d`, units s, m, h, d, w)."""
    if value is None:
        value = default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        return int(text)
    m = _DATE_MATH.fullmatch(text.replace(" ", ""))
    if m is not None and (m.group(1) or m.group(2)):
        shift = 0 if m.group(2) is None else int(m.group(3)) * _UNIT_MS[m.group(4)]
        return now - shift if m.group(2) == "-" else now + shift
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RequestError(
            f"{what} {text[:60]!r} is not a time: use epoch milliseconds, ISO 8601 "
            "(2024-05-01T12:00:00Z) or date math (now, now-15m, now-2d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def parse_sort(sort: str | None) -> tuple[str, Field | None, bool]:
    """`timestamp`, `-timestamp` (the default, newest first), `@facet`, `-@facet`, or a reserved
    attribute (`service`, `-status`...)."""
    text = (sort or "-timestamp").strip()
    descending = text.startswith("-")
    name = text[1:] if descending else text
    if name == "timestamp":
        return text, None, descending
    path = name[1:] if name.startswith("@") else name if name in LOGS_VOCABULARY.reserved else ""
    if not path or path.startswith(".") or path.endswith(".") or '"' in path or len(path) > 512:
        raise RequestError(
            f"sort {sort!r} is not a sort: use timestamp, -timestamp, @attribute or -@attribute"
        )
    return text, Field(path), descending


def build_search(
    *,
    query: str | None,
    start: str | int | None,
    end: str | int | None,
    sort: str | None,
    limit: int | None,
    cursor: str | None,
    indexes: list[str] | None,
    where: Literal["body", "query"],
) -> LogSearch:
    """`where` names how the request spells its parameters (`filter.` or `filter[`), for messages."""
    now = now_ms()
    if cursor:
        position = _Cursor.decode(cursor)
        offset, start_ms, end_ms = position.offset, position.start_ms, position.end_ms
    else:
        offset = 0
        start_ms = parse_time(start, DEFAULT_FROM, _name(where, "from"), now)
        end_ms = parse_time(end, DEFAULT_TO, _name(where, "to"), now)
        if start_ms >= end_ms:
            raise RequestError(
                f"{_name(where, 'from')} ({start_ms}) must be earlier than {_name(where, 'to')} ({end_ms})"
            )
    page_limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= page_limit <= MAX_LIMIT:
        raise RequestError(f"page limit must be between 1 and {MAX_LIMIT}, not {page_limit}")
    text, field, descending = parse_sort(sort)
    search_text = query if query is not None and query.strip() else "*"
    try:
        flt = parse_search(search_text, LOGS_VOCABULARY)
    except SearchSyntaxError as exc:
        raise RequestError(f"{_name(where, 'query')}: {exc}") from None
    return LogSearch(
        query=search_text,
        filter=flt,
        start_ms=start_ms,
        end_ms=end_ms,
        sort=text,
        sort_field=field,
        descending=descending,
        limit=page_limit,
        offset=offset,
        indexes=indexes,
    )


def _name(where: Literal["body", "query"], key: str) -> str:
    return f"filter[{key}]" if where == "query" else f"filter.{key}"


# --- rendering --------------------------------------------------------------------------------------------


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Flattened attributes back into nested objects (`{"http.status": 200}` -> `{"http": {"status":
    200}}`). A path under another path that holds a value stays one dotted key, so nothing is lost; the
    other paths never meet a value where they need an object."""
    leaves = set(flat)
    out: dict[str, Any] = {}
    for path, value in flat.items():
        parts = path.split(".")
        if any(".".join(parts[:i]) in leaves for i in range(1, len(parts))):
            out[path] = value
            continue
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _iso(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def render_logs(rows: pa.Table) -> list[dict[str, Any]]:
    data = rows.to_pydict()
    logs: list[dict[str, Any]] = []
    for i in range(rows.num_rows):
        stored: dict[str, Any] = _decode_json(data["attributes"][i])
        for path in STANDARD_PATHS:
            value = data[path][i]
            if value:  # the empty name and type of a log that sent none are not attributes
                stored[path] = value
        attributes: dict[str, Any] = {"timestamp": _iso(data["time_ms"][i])}
        for name in (STATUS, SERVICE, HOST, MESSAGE):
            if isinstance(stored.get(name), str):
                attributes[name] = stored[name]
        attributes[TAGS] = stored.get(TAGS) or []
        attributes["attributes"] = nest({k: v for k, v in stored.items() if k not in _TOP_LEVEL})
        logs.append({"id": str(data["event_id"][i]), "type": "log", "attributes": attributes})
    return logs


class DatadogLogsSearch:
    def __init__(self, directory: Directory, store: Backend) -> None:
        self._directory = directory
        self._store = store

    def endpoints(self) -> list[Endpoint]:
        errors = {
            400: Reply("Bad Request", APIErrorResponse),
            401: Reply("Unauthorized", APIErrorResponse),
            403: Reply("Forbidden", APIErrorResponse),
            413: Reply("Payload Too Large", APIErrorResponse),
            504: Reply("Query timed out", APIErrorResponse),
        }
        responses = {200: Reply("OK", LogsListResponse), **errors}
        auth = ("DD-API-KEY", "DD-APPLICATION-KEY")
        return [
            Endpoint(
                "POST",
                SEARCH_PATH,
                guarded(self.search, api_error),
                "Search logs: the logs matching a search query, newest first unless sorted otherwise",
                tag="Datadog Logs",
                request=LogsListRequest,
                responses=responses,
                auth_headers=auth,
            ),
            Endpoint(
                "GET",
                LIST_PATH,
                guarded(self.list, api_error),
                "Search logs with query parameters (filter[query], filter[from], filter[to], sort, "
                "page[limit], page[cursor])",
                tag="Datadog Logs",
                responses=responses,
                auth_headers=auth,
            ),
        ]

    async def search(self, request: Request) -> Response:
        try:
            org_id = self._org(request)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        try:
            body = await read_body(
                request.receive, request.headers, max_bytes=MAX_QUERY_BODY, max_decoded=MAX_QUERY_BODY
            )
            spec = decode(body, LogsListRequest) if body.strip() else LogsListRequest()
            assert isinstance(spec, LogsListRequest)
            flt = spec.filter or LogsQueryFilter()
            page = spec.page or LogsListRequestPage()
            search = build_search(
                query=flt.query,
                start=flt.start,
                end=flt.to,
                sort=spec.sort,
                limit=page.limit,
                cursor=page.cursor,
                indexes=flt.indexes,
                where="body",
            )
        except BodyError as exc:
            return api_error(exc.status, str(exc))
        except RequestError as exc:
            return api_error(400, str(exc))
        return await self._answer(request, org_id, search)

    async def list(self, request: Request) -> Response:
        try:
            org_id = self._org(request)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        params = request.query_params
        raw_limit = params.get("page[limit]")
        indexes = params.get("filter[indexes]")
        try:
            if raw_limit is not None and not raw_limit.strip().lstrip("-").isdigit():
                raise RequestError(f"page[limit] must be a whole number, not {raw_limit[:40]!r}")
            search = build_search(
                query=params.get("filter[query]"),
                start=params.get("filter[from]"),
                end=params.get("filter[to]"),
                sort=params.get("sort"),
                limit=None if raw_limit is None else int(raw_limit),
                cursor=params.get("page[cursor]"),
                indexes=None if indexes is None else [i for i in indexes.split(",") if i],
                where="query",
            )
        except RequestError as exc:
            return api_error(400, str(exc))
        return await self._answer(request, org_id, search)

    def _org(self, request: Request) -> int:
        return require_app_key(request.headers, self._directory, "logs_read_data").org_id

    async def _answer(self, request: Request, org_id: int, search: LogSearch) -> Response:
        started = time.perf_counter()
        try:
            rows, total = await asyncio.to_thread(
                self._store.list_events, search.list_query(org_id), QUERY_TIMEOUT_S
            )
        except QueryTimeout as exc:
            return api_error(504, f"Query timed out: {exc}; narrow the time range or the search")
        meta: dict[str, Any] = {
            "elapsed": round((time.perf_counter() - started) * 1000),
            "request_id": request_id(request.scope),
            "status": "done",
        }
        body = LogsListResponse(data=render_logs(rows), meta=meta)
        seen = search.offset + rows.num_rows
        if seen < total:
            after = _Cursor(seen, search.start_ms, search.end_ms).encode()
            meta["page"] = {"after": after}
            body.links = {"next": _next_link(request, search, after)}
        return json_response(body)


def _next_link(request: Request, search: LogSearch, after: str) -> str:
    """The GET request for the next page."""
    params = {
        "filter[query]": search.query,
        "filter[from]": str(search.start_ms),
        "filter[to]": str(search.end_ms),
        "sort": search.sort,
        "page[limit]": str(search.limit),
        "page[cursor]": after,
    }
    if search.indexes:
        params["filter[indexes]"] = ",".join(search.indexes)
    return f"{str(request.base_url).rstrip('/')}{LIST_PATH}?{urlencode(params)}"
