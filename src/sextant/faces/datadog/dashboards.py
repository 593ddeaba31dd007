"""`/api/v1/dashboard`: Datadog's dashboards API, stored in the control plane.

Create, get, update (PUT), delete, list, bulk delete and restore, as the official clients call them. A
definition is checked the way Datadog checks it (a title, `layout_type` `ordered` or `free`, widgets whose
definitions have a `type`, a layout on every widget of a free dashboard, `reflow_type` only on ordered
ones, `team:` tags) and then kept exactly as sent, so widget fields Sextant does not know round-trip
unchanged. The server owns `id`, `author_*`, `created_at`, `modified_at` and `url`: sent values are ignored.
Widgets without an `id` get one, as Datadog gives them. Evaluating widget requests is not this module's
work. Authenticated like the Datadog query endpoints (API key + application key).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
import sqlalchemy as sa
from msgspec import UNSET, UnsetType
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from sextant.config import MIB
from sextant.control.dashboards import (
    Dashboard,
    DashboardFields,
    DashboardSummary,
    create_dashboard,
    delete_dashboards,
    get_dashboard,
    list_dashboards,
    restore_dashboards,
    update_dashboard,
)
from sextant.control.directory import Directory
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import GuardedRoutes
from sextant.faces.datadog.auth import AuthFailure, require_app_key
from sextant.faces.datadog.errors import APIErrorResponse, api_error

PATH = "/api/v1/dashboard"
ITEM_PATH = PATH + "/{dashboard_id}"
# Datadog's permissions for these endpoints.
READ_SCOPE = "dashboards_read"
WRITE_SCOPE = "dashboards_write"
# Datadog documents no size limit; 5 MiB holds dashboards of several hundred widgets.
MAX_BODY = 5 * MIB
# Nesting of JSON objects and arrays; a group widget's queries sit about 14 levels deep.
MAX_DEPTH = 32
# Dashboards per bulk delete or restore.
MAX_BULK = 1000
# Fields the server owns: a client that sends back what it read must not be refused for them.
READ_ONLY = frozenset(
    {"id", "author_handle", "author_name", "created_at", "modified_at", "url", "experience_type"}
)
# Widget ids stay below 2^53 so that JavaScript clients read them exactly.
WIDGET_ID_LIMIT = 2**53
MAX_QUERY_INT = 2**63 - 1
SLUG_LENGTH = 80

NonNegative = Annotated[int, msgspec.Meta(ge=0)]
BulkAction = Callable[[sa.Connection, int, Iterable[str]], list[str]]


class WidgetLayout(msgspec.Struct):
    """Where a widget sits on the grid; required on every widget of a `free` dashboard."""

    x: NonNegative
    y: NonNegative
    width: NonNegative
    height: NonNegative
    is_column_break: bool | UnsetType = UNSET


class WidgetDefinition(msgspec.Struct):
    """A widget's definition: `type` (timeseries, toplist, query_value, group, note...) decides the other
    fields (`requests` with `queries` + `formulas` or a legacy `q`, `title`, `yaxis`...), kept as sent."""

    type: Annotated[str, msgspec.Meta(min_length=1)]
    # Group widgets hold widgets of their own.
    widgets: list[Widget] | UnsetType = UNSET


class Widget(msgspec.Struct):
    definition: WidgetDefinition
    # Assigned by the server when absent.
    id: int | UnsetType = UNSET
    layout: WidgetLayout | UnsetType = UNSET


class TemplateVariable(msgspec.Struct):
    name: str


class DashboardDefinition(msgspec.Struct):
    """A dashboard as clients send it. Fields not named here are kept as sent."""

    title: Annotated[str, msgspec.Meta(min_length=1)]
    layout_type: Literal["ordered", "free"]
    widgets: list[Widget]
    description: str | UnsetType | None = UNSET
    is_read_only: bool | UnsetType = UNSET
    notify_list: list[str] | UnsetType | None = UNSET
    # Only on `ordered` dashboards: `fixed` widgets have layouts, `auto` ones do not.
    reflow_type: Literal["auto", "fixed"] | UnsetType = UNSET
    restricted_roles: list[str] | UnsetType = UNSET
    # Team names, `team:<name>`.
    tags: Annotated[list[str], msgspec.Meta(max_length=5)] | UnsetType | None = UNSET
    tabs: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=100)] | UnsetType | None = UNSET
    template_variables: list[TemplateVariable] | UnsetType | None = UNSET
    template_variable_presets: list[dict[str, Any]] | UnsetType | None = UNSET
    default_timeframe: dict[str, Any] | UnsetType | None = UNSET


class DashboardResponse(DashboardDefinition, kw_only=True):
    """A stored dashboard: the definition as sent, with the fields the server owns."""

    id: str
    author_handle: str
    author_name: str | None
    created_at: str
    modified_at: str
    url: str


class DashboardSummaryDefinition(msgspec.Struct, omit_defaults=True):
    created_at: str
    author_handle: str
    is_read_only: bool
    description: str | None
    title: str
    url: str
    layout_type: str
    modified_at: str
    id: str
    # Only in `filter[deleted]=true` listings.
    deleted_at: str | UnsetType = UNSET


class DashboardSummaryList(msgspec.Struct):
    dashboards: list[DashboardSummaryDefinition]


class DashboardDeleteResponse(msgspec.Struct):
    deleted_dashboard_id: str


class DashboardBulkActionData(msgspec.Struct):
    id: str
    type: Literal["dashboard"] = "dashboard"


class DashboardBulkActionRequest(msgspec.Struct):
    """The dashboards to delete or restore: all of them, or none when one is not found."""

    data: Annotated[list[DashboardBulkActionData], msgspec.Meta(min_length=1, max_length=MAX_BULK)]


class InvalidRequest(ValueError):
    """A request Datadog would refuse with 400; the message says what to fix."""


def parse_dashboard(body: bytes) -> DashboardFields:
    """Check a dashboard body as Datadog does; the definition keeps every field as sent, widget ids added."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Invalid JSON: {exc}; send the dashboard as a JSON object") from exc
    except RecursionError as exc:
        raise InvalidRequest(_too_deep()) from exc
    if not isinstance(raw, dict):
        raise InvalidRequest('Invalid dashboard: send a JSON object {"title", "layout_type", "widgets", ...}')
    if _deeper_than(raw, MAX_DEPTH):
        raise InvalidRequest(_too_deep())
    try:
        checked = msgspec.convert(raw, DashboardDefinition)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid dashboard: {exc}{_hint(str(exc))}") from exc
    _check_rules(checked)
    definition = {key: value for key, value in raw.items() if key not in READ_ONLY}
    _assign_widget_ids(definition["widgets"])
    return DashboardFields(
        title=checked.title,
        description=checked.description if isinstance(checked.description, str) else None,
        layout_type=checked.layout_type,
        is_read_only=checked.is_read_only is True,
        definition=definition,
    )


# msgspec names the field and the path; these say what the value should be.
_HINTS = {
    "`$.layout_type`": "layout_type is 'ordered' or 'free'",
    "`$.reflow_type`": "reflow_type is 'auto' or 'fixed'",
    "`$.tags`": "tags are at most 5 team names, 'team:<name>'",
    ".layout": 'a widget layout is {"x", "y", "width", "height"}, whole numbers from 0',
}


def _hint(message: str) -> str:
    if " - at `" not in message:
        return "; a dashboard needs a title, a layout_type ('ordered' or 'free') and a list of widgets"
    for fragment, hint in _HINTS.items():
        if fragment in message:
            return f"; {hint}"
    return ""


def _too_deep() -> str:
    return f"Invalid dashboard: JSON nested deeper than {MAX_DEPTH} levels"


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _check_rules(dashboard: DashboardDefinition) -> None:
    """What Datadog checks beyond the field types."""
    if dashboard.layout_type == "free":
        for position, widget in enumerate(dashboard.widgets):
            if widget.layout is UNSET:
                raise InvalidRequest(
                    f"Invalid widget at position {position}. Error: 'layout' is a required property: "
                    "every widget of a dashboard whose layout_type is 'free' needs "
                    '"layout": {"x", "y", "width", "height"}'
                )
    if dashboard.reflow_type is not UNSET and dashboard.layout_type != "ordered":
        raise InvalidRequest("reflow_type can only be set when layout_type is 'ordered'")
    for tag in dashboard.tags or ():
        key, _, name = tag.partition(":")
        if key != "team" or not name:
            raise InvalidRequest(
                f"Invalid tag format. Tag key must be `team`: got {tag!r}, use 'team:<name>'"
            )


def _assign_widget_ids(widgets: list[Any]) -> None:
    for widget in widgets:
        if "id" not in widget:
            widget["id"] = 1 + secrets.randbelow(WIDGET_ID_LIMIT - 1)
        inner = widget["definition"].get("widgets")
        if isinstance(inner, list):
            _assign_widget_ids(inner)


_UNSLUGGED = re.compile(r"[^a-z0-9\s-]")
_SEPARATORS = re.compile(r"[-\s]+")


def dashboard_url(dashboard_id: str, title: str) -> str:
    """Datadog's relative URL: `/dashboard/<id>/<title lowercased, letters and digits, dash-separated>`."""
    slug = _SEPARATORS.sub("-", _UNSLUGGED.sub("", title.lower())).strip("-")[:SLUG_LENGTH].strip("-")
    return f"/dashboard/{dashboard_id}/{slug}" if slug else f"/dashboard/{dashboard_id}"


def _timestamp(ms: int) -> str:
    """Datadog's ISO 8601 form, `2024-11-15T19:33:11.001000+00:00`."""
    moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
    return moment.isoformat(timespec="microseconds")


def render_dashboard(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as Datadog answers it: its fields in Datadog's order with Datadog's defaults for the
    ones not sent, then every other field as sent."""
    s, definition = dashboard.summary, dashboard.definition
    out: dict[str, Any] = {
        "id": s.id,
        "title": s.title,
        "description": definition.get("description"),
        "author_handle": s.author_handle,
        "author_name": s.author_name,
        "layout_type": s.layout_type,
        "url": dashboard_url(s.id, s.title),
        "is_read_only": definition.get("is_read_only", False),
        "template_variables": definition.get("template_variables"),
        "widgets": definition["widgets"],
        "notify_list": definition.get("notify_list"),
        "created_at": _timestamp(s.created_at),
        "modified_at": _timestamp(s.modified_at),
        "restricted_roles": definition.get("restricted_roles", []),
    }
    out.update((key, value) for key, value in definition.items() if key not in out)
    return out


def _summary(s: DashboardSummary) -> DashboardSummaryDefinition:
    return DashboardSummaryDefinition(
        created_at=_timestamp(s.created_at),
        author_handle=s.author_handle,
        is_read_only=s.is_read_only,
        description=s.description,
        title=s.title,
        url=dashboard_url(s.id, s.title),
        layout_type=s.layout_type,
        modified_at=_timestamp(s.modified_at),
        id=s.id,
        deleted_at=UNSET if s.deleted_at is None else _timestamp(s.deleted_at),
    )


def _bool_param(params: QueryParams, name: str) -> bool:
    raw = params.get(name)
    if raw is None or raw.lower() == "false":
        return False
    if raw.lower() == "true":
        return True
    raise InvalidRequest(f"Invalid value {raw!r} for {name}: use true or false")


def _int_param(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdecimal() or int(raw) > MAX_QUERY_INT:
        raise InvalidRequest(
            f"Invalid value {raw!r} for {name}: use a whole number from 0 to {MAX_QUERY_INT}"
        )
    return int(raw)


def _not_found(ids: list[str]) -> Response:
    if len(ids) == 1:
        return api_error(404, f"Dashboard with ID {ids[0]} not found")
    return api_error(404, f"Dashboards with IDs {', '.join(ids)} not found")


class DatadogDashboardsApi:
    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def endpoints(self) -> list[Endpoint]:
        auth = ("DD-API-KEY", "DD-APPLICATION-KEY")
        errors = {
            code: Reply(text, APIErrorResponse)
            for code, text in [(400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden")]
        }
        not_found = {404: Reply("Dashboard not found", APIErrorResponse)}
        too_large = {413: Reply("Body too large", APIErrorResponse)}
        endpoint = GuardedRoutes("Datadog dashboards", auth, api_error, errors).endpoint
        dashboard = {200: Reply("OK", DashboardResponse)}
        return [
            endpoint(
                "POST",
                PATH,
                self.create,
                "Create a dashboard",
                {**dashboard, **too_large},
                DashboardDefinition,
            ),
            endpoint(
                "GET",
                PATH,
                self.list,
                "List dashboards (filter[shared], filter[deleted], count, start)",
                {200: Reply("OK", DashboardSummaryList)},
            ),
            endpoint(
                "DELETE",
                PATH,
                self.delete_many,
                "Delete dashboards (all or none)",
                {204: Reply("Deleted"), **not_found, **too_large},
                DashboardBulkActionRequest,
            ),
            endpoint(
                "PATCH",
                PATH,
                self.restore_many,
                "Restore deleted dashboards (all or none)",
                {204: Reply("Restored"), **not_found, **too_large},
                DashboardBulkActionRequest,
            ),
            endpoint("GET", ITEM_PATH, self.get, "Get a dashboard", {**dashboard, **not_found}),
            endpoint(
                "PUT",
                ITEM_PATH,
                self.update,
                "Update a dashboard (replaces its definition)",
                {**dashboard, **not_found, **too_large},
                DashboardDefinition,
            ),
            endpoint(
                "DELETE",
                ITEM_PATH,
                self.delete,
                "Delete a dashboard",
                {200: Reply("Deleted", DashboardDeleteResponse), **not_found},
            ),
        ]

    async def _body(self, request: Request) -> bytes:
        return await read_body(request.receive, request.headers, max_bytes=MAX_BODY, max_decoded=MAX_BODY)

    async def create(self, request: Request) -> Response:
        try:
            principal = require_app_key(request.headers, self._directory, WRITE_SCOPE)
            fields = parse_dashboard(await self._body(request))
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        except BodyError as exc:
            return api_error(exc.status, str(exc))
        except InvalidRequest as exc:
            return api_error(400, str(exc))
        with self._directory.engine.begin() as conn:
            created = create_dashboard(
                conn, org_id=principal.org_id, fields=fields, author_handle=principal.key_id, author_name=None
            )
        return json_response(render_dashboard(created))

    async def get(self, request: Request) -> Response:
        try:
            org_id = require_app_key(request.headers, self._directory, READ_SCOPE).org_id
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        dashboard_id = request.path_params["dashboard_id"]
        with self._directory.engine.connect() as conn:
            found = get_dashboard(conn, org_id, dashboard_id)
        if found is None:
            return _not_found([dashboard_id])
        return json_response(render_dashboard(found))

    async def update(self, request: Request) -> Response:
        try:
            org_id = require_app_key(request.headers, self._directory, WRITE_SCOPE).org_id
            fields = parse_dashboard(await self._body(request))
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        except BodyError as exc:
            return api_error(exc.status, str(exc))
        except InvalidRequest as exc:
            return api_error(400, str(exc))
        dashboard_id = request.path_params["dashboard_id"]
        with self._directory.engine.begin() as conn:
            updated = update_dashboard(conn, org_id, dashboard_id, fields)
        if updated is None:
            return _not_found([dashboard_id])
        return json_response(render_dashboard(updated))

    async def delete(self, request: Request) -> Response:
        try:
            org_id = require_app_key(request.headers, self._directory, WRITE_SCOPE).org_id
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        dashboard_id = request.path_params["dashboard_id"]
        with self._directory.engine.begin() as conn:
            missing = delete_dashboards(conn, org_id, [dashboard_id])
        if missing:
            return _not_found(missing)
        return json_response(DashboardDeleteResponse(dashboard_id))

    async def list(self, request: Request) -> Response:
        try:
            org_id = require_app_key(request.headers, self._directory, READ_SCOPE).org_id
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        params = request.query_params
        try:
            shared = _bool_param(params, "filter[shared]")
            deleted = _bool_param(params, "filter[deleted]")
            count = _int_param(params, "count")
            start = _int_param(params, "start") or 0
        except InvalidRequest as exc:
            return api_error(400, str(exc))
        if shared and deleted:
            return api_error(400, "filter[deleted] cannot be combined with filter[shared]=true")
        if shared:
            # Sextant has no public sharing: no dashboard is shared.
            return json_response(DashboardSummaryList([]))
        with self._directory.engine.connect() as conn:
            found = list_dashboards(conn, org_id, deleted=deleted, start=start, count=count)
        return json_response(DashboardSummaryList([_summary(s) for s in found]))

    async def delete_many(self, request: Request) -> Response:
        return await self._bulk(request, delete_dashboards)

    async def restore_many(self, request: Request) -> Response:
        return await self._bulk(request, restore_dashboards)

    async def _bulk(self, request: Request, action: BulkAction) -> Response:
        try:
            org_id = require_app_key(request.headers, self._directory, WRITE_SCOPE).org_id
            body = await self._body(request)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        except BodyError as exc:
            return api_error(exc.status, str(exc))
        try:
            spec = msgspec.json.decode(body, type=DashboardBulkActionRequest)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return api_error(
                400,
                f'Invalid request: {exc}; send {{"data": [{{"id": "abc-def-ghi", "type": "dashboard"}}]}}',
            )
        with self._directory.engine.begin() as conn:
            missing = action(conn, org_id, [item.id for item in spec.data])
        if missing:
            return _not_found(missing)
        return Response(status_code=204)
