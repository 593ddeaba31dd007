"""`/api/v2/sextant/segments`: stored sets of user ids for Product Analytics audience filters.

Authenticated like the Datadog query endpoints (API key + application key), with Datadog's error body.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from sextant.config import MIB
from sextant.control.directory import Directory
from sextant.control.segments import Segment, create_segment, delete_segment, list_segments
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import guarded
from sextant.faces.datadog.auth import AuthFailure, require_app_key
from sextant.faces.datadog.errors import APIErrorResponse, api_error

PATH = "/api/v2/sextant/segments"
MAX_BODY = 64 * MIB


class SegmentCreate(msgspec.Struct):
    """A new segment: a name and its user ids."""

    name: str
    user_ids: list[str]


class SegmentOut(msgspec.Struct):
    id: str
    name: str
    size: int
    created_at: int


class SegmentList(msgspec.Struct):
    data: list[SegmentOut]


def _out(segment: Segment) -> SegmentOut:
    return SegmentOut(segment.id, segment.name, segment.size, segment.created_at)


class SegmentsApi:
    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def endpoints(self) -> list[Endpoint]:
        auth = ("DD-API-KEY", "DD-APPLICATION-KEY")
        errors = {
            code: Reply(text, APIErrorResponse)
            for code, text in [(400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden")]
        }
        tag = "Sextant segments"
        too_large = {413: Reply("Too large", APIErrorResponse)}
        not_found = {404: Reply("Not found", APIErrorResponse)}
        return [
            Endpoint(
                "GET",
                PATH,
                guarded(self.list, api_error),
                "List segments",
                tag,
                responses={200: Reply("OK", SegmentList), **errors},
                auth_headers=auth,
            ),
            Endpoint(
                "POST",
                PATH,
                guarded(self.create, api_error),
                "Create a segment from user ids",
                tag,
                request=SegmentCreate,
                responses={201: Reply("Created", SegmentOut), **errors, **too_large},
                auth_headers=auth,
            ),
            Endpoint(
                "DELETE",
                PATH + "/{segment_id}",
                guarded(self.delete, api_error),
                "Delete a segment",
                tag,
                responses={204: Reply("Deleted"), **errors, **not_found},
                auth_headers=auth,
            ),
        ]

    def _org(self, request: Request) -> int:
        return require_app_key(request.headers, self._directory, "rum_apps_read").org_id

    async def list(self, request: Request) -> Response:
        try:
            org_id = self._org(request)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        with self._directory.engine.connect() as conn:
            segments = list_segments(conn, org_id)
        return json_response(SegmentList([_out(s) for s in segments]))

    async def create(self, request: Request) -> Response:
        try:
            org_id = self._org(request)
            body = await read_body(request.receive, request.headers, max_bytes=MAX_BODY, max_decoded=MAX_BODY)
            spec = msgspec.json.decode(body, type=SegmentCreate)
            with self._directory.engine.begin() as conn:
                segment = create_segment(conn, org_id=org_id, name=spec.name, user_ids=spec.user_ids)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        except BodyError as exc:
            return api_error(exc.status, str(exc))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return api_error(400, f'invalid segment: {exc}; send {{"name": ..., "user_ids": [...]}}')
        except ValueError as exc:
            return api_error(400, str(exc))
        return json_response(_out(segment), 201)

    async def delete(self, request: Request) -> Response:
        try:
            org_id = self._org(request)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        with self._directory.engine.begin() as conn:
            deleted = delete_segment(conn, org_id, request.path_params["segment_id"])
        if not deleted:
            return api_error(404, "no such segment in this organization")
        return Response(status_code=204)
