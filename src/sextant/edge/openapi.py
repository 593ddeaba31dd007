"""OpenAPI 3.1 document generated from the endpoint registry and its msgspec request/response types."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from sextant import __version__
from sextant.edge.endpoints import Endpoint

_REF = "#/components/schemas/{name}"
# Starlette's path convertors (`{id:path}`): routing detail, not part of an OpenAPI path template.
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def openapi_document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    types: list[Any] = []
    for ep in endpoints:
        if ep.request is not None:
            types.append(ep.request)
        types.extend(r.schema for r in ep.responses.values() if r.schema is not None)
    unique = list(dict.fromkeys(types))
    refs, components = msgspec.json.schema_components(unique, ref_template=_REF)
    ref_of = dict(zip(unique, refs, strict=True))

    paths: dict[str, dict[str, Any]] = {}
    schemes: dict[str, Any] = {}
    for ep in endpoints:
        path = _CONVERTOR.sub(r"{\1}", ep.path)
        op: dict[str, Any] = {
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": f"{ep.method.lower()}_{path.strip('/').replace('/', '_').replace('-', '_')}",
            "responses": {
                str(status): _response(reply.description, reply.content_type, ref_of.get(reply.schema))
                for status, reply in sorted(ep.responses.items())
            },
        }
        if ep.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref_of[ep.request]}},
            }
        if ep.auth_headers:
            op["security"] = [{name: [] for name in ep.auth_headers}]
            for name in ep.auth_headers:
                schemes[name] = {"type": "apiKey", "in": "header", "name": name}
        paths.setdefault(path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sextant", "version": __version__},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": schemes},
    }


def _response(description: str, content_type: str, schema: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {content_type: {"schema": schema}}
    return out
