"""Request ids and structured access logs, as one pure ASGI middleware."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable
from typing import TextIO

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
FLUSH_SECONDS = 0.1
_VALID_INCOMING_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_encoder = msgspec.json.Encoder()


class AccessRecord(msgspec.Struct, gc=False):
    """One access-log line."""

    ts: float
    msg: str
    request_id: str
    method: str
    path: str
    status: int
    duration_ms: float
    client: str | None


log = logging.getLogger("sextant.http")


def request_id(scope: Scope) -> str:
    """The id of the request being served (set by RequestContext)."""
    rid: str = scope.get("state", {}).get("request_id", "-")
    return rid


class RequestContext:
    """Gives each request an id (the caller's X-Request-Id if sane), echoes it, and logs one JSON line."""

    def __init__(self, app: ASGIApp, *, access_log: bool, stream: TextIO | None = None) -> None:
        self.app = app
        self.access_log = access_log
        self.stream = stream or sys.stdout
        self._pending: list[AccessRecord] = []
        self._flush_scheduled = False
        # Ids only need to be unique, not unpredictable: a random per-process prefix and a counter cost
        # no system call per request.
        self._id_prefix = os.urandom(4).hex()
        self._id_counter = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER and _VALID_INCOMING_ID.match(value):
                rid = value.decode()
                break
        if rid is None:
            rid = f"{self._id_prefix}{next(self._id_counter) & 0xFFFFFFFF:08x}"
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 500
        rid_header = (REQUEST_ID_HEADER, rid.encode())

        # A plain function returning the server's awaitable: no coroutine of its own for every message.
        def send_with_id(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A new message: handlers may send the same prebuilt one for every request.
                message = {**message, "headers": [*message.get("headers", []), rid_header]}
            return send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log:
                self._log(scope, rid, status, started)

    def _log(self, scope: Scope, rid: str, status: int, started: float) -> None:
        client = scope.get("client")
        self._pending.append(
            AccessRecord(
                time.time(),
                "request",
                rid,
                scope["method"],
                scope["path"],
                status,
                round((time.perf_counter() - started) * 1000, 3),
                client[0] if client else None,
            )
        )
        # Lines go out together within FLUSH_SECONDS (one write and flush for many requests), not held in
        # Python's buffer until it fills, as it would when stdout is a pipe or a file.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write out the access log lines waiting (also called when the server stops)."""
        self._flush_scheduled = False
        if self._pending:
            records, self._pending = self._pending, []
            lines = _encoder.encode_lines(records)
            # Bytes straight to the stream's buffer: decoding them to text only for the stream to encode
            # that text again would copy every line twice.
            buffer = getattr(self.stream, "buffer", None)
            if buffer is None:
                self.stream.write(lines.decode())
                self.stream.flush()
            else:
                self.stream.flush()  # whatever was printed before these lines goes first
                buffer.write(lines)
                buffer.flush()
