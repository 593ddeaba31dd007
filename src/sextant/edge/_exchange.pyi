from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

PREFIX_LENGTH: int

_R = TypeVar("_R")

class Exchange:
    """One request's id, and the send that echoes it in the response head (see _exchange.c)."""

    request_id: str
    """The caller's X-Request-Id if sane, else a new one: `id_prefix` and a counter in hex."""
    status: int
    """The status of the response started through this exchange; 500 until then."""

    def __init__(
        self, scope: MutableMapping[str, Any], send: Callable[[Any], Awaitable[None]], id_prefix: str
    ) -> None: ...
    def __call__(self, message: Any, /) -> Awaitable[None]:
        """Forward `message` to the server's send; a response start as a copy with the id's header."""

    def record(self, record_type: Callable[..., _R], /) -> _R:
        """record_type(ts, "request", request_id, method, path, status, duration_ms, client)."""
