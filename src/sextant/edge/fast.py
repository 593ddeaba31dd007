"""Hot paths: routes answered by bare ASGI handlers, ahead of the framework's router and request objects."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class FastPaths:
    def __init__(self, app: ASGIApp, *, routes: Mapping[tuple[str, str], ASGIApp]) -> None:
        self.app = app
        self.paths: dict[str, dict[str, ASGIApp]] = {}
        for (method, path), handler in routes.items():
            self.paths.setdefault(path, {})[method] = handler

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the handler's coroutine rather than awaiting it: one coroutine frame less for every
        # resumption of the request's task.
        methods = self.paths.get(scope["path"]) if scope["type"] == "http" else None
        if methods is None:
            return self.app(scope, receive, send)
        handler = methods.get(scope["method"])
        if handler is None:
            # As the framework's router answers a known path with another method.
            allow = ", ".join(sorted(methods))
            return PlainTextResponse("Method Not Allowed", 405, headers={"Allow": allow})(
                scope, receive, send
            )
        return handler(scope, receive, send)
