"""The ceiling for bench/ingest.py: Sextant's HTTP stack with an intake route that does nothing.

It answers `POST /api/v2/prodlytics` with 202 `{}` without reading, validating or storing anything, on
the same socket setup and uvicorn configuration as `sextant serve`. Whatever this reaches is the most
the intake could reach on this machine, so the benchmark reports Sextant as a fraction of it.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sextant.faces.datadog.prodlytics import PATH
from sextant.server import bind, uvicorn_config

_ACCEPTED = Response(b"{}", 202, media_type="application/json")
_READY = Response(b'{"status":"ok"}', media_type="application/json")


async def accept(_: Request) -> Response:
    return _ACCEPTED


async def ready(_: Request) -> Response:
    return _READY


def build_app() -> Starlette:
    return Starlette(routes=[Route(PATH, accept, methods=["POST"]), Route("/ready", ready, methods=["GET"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    # Same line shape as `sextant serve`, so the benchmark finds both servers' addresses the same way.
    print(f"Ceiling listening on http://{host}:{port}", flush=True)
    # The same stack and configuration as `sextant serve`: the ceiling is only fair if it is.
    uvicorn.Server(uvicorn_config(build_app())).run(sockets=[sock])


if __name__ == "__main__":
    main()
