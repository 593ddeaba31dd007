"""Hot paths: routes answered by bare ASGI handlers, ahead of the framework's router and request objects."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class FastPaths:
    def __init__(self, app: ASGIApp, *, routes: Mapping[tuple[str, str], ASGIApp]) -> None:
        self.app = app
        self.paths: dict[str, dict[str, ASGIApp]] = {}
        for (method, path), handler in routes.items():
            self.paths.setdefault(path, {})[method] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        methods = self.paths.get(scope["path"]) if scope["type"] == "http" else None
        if methods is None:
            await self.app(scope, receive, send)
            return
        handler = methods.get(scope["method"])
        if handler is None:
            # As the framework's router answers a known path with another method.
            allow = ", ".join(sorted(methods))
            await PlainTextResponse("Method Not Allowed", 405, headers={"Allow": allow})(scope, receive, send)
            return
        await handler(scope, receive, send)
