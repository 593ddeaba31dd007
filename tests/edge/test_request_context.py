"""Request ids, the response header that echoes them, and access-log records (edge/_exchange.c and the
RequestContext middleware around it). The server's behaviour over HTTP is in tests/e2e/test_lifecycle.py."""

from __future__ import annotations

import asyncio
import collections
import io
import json
import re
import sys
import time
import tracemalloc
from collections.abc import Awaitable
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from sextant.edge._exchange import PREFIX_LENGTH, Exchange
from sextant.edge.requests import AccessRecord, RequestContext, request_id

PREFIX = "0a1b2c3d"
START: Message = {"type": "http.response.start", "status": 202, "headers": [(b"content-type", b"text/plain")]}
BODY: Message = {"type": "http.response.body", "body": b"{}"}


def scope_with(*headers: tuple[bytes, bytes], **extra: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/api/v2/prodlytics",
        "client": ("127.0.0.1", 50123),
        "headers": [(b"host", b"localhost"), *headers],
    }
    scope.update(extra)
    return scope


class Sent:
    """The server's send: keeps what it is given and returns an awaitable, as servers do."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> Awaitable[None]:
        self.messages.append(message)
        return asyncio.sleep(0)


@pytest.mark.parametrize("rid", ["abc-123", "trace:5f2b.AZ_9", "x" * 128, "0"])
def test_a_sane_incoming_id_is_kept(rid: str) -> None:
    scope = scope_with((b"x-request-id", rid.encode()))
    exchange = Exchange(scope, Sent(), PREFIX)
    assert exchange.request_id == rid
    assert scope["state"] == {"request_id": rid}


UNSAFE_IDS = [b"", b"x" * 129, b"has space", b"semi;colon", b'quote"d', b"new\n", b"\xc3\xa9"]


@pytest.mark.parametrize("rid", UNSAFE_IDS)
def test_an_unsafe_incoming_id_is_replaced(rid: bytes) -> None:
    exchange = Exchange(scope_with((b"x-request-id", rid)), Sent(), PREFIX)
    assert re.fullmatch(PREFIX + r"[0-9a-f]{8}", exchange.request_id)


def test_the_first_sane_header_is_taken() -> None:
    scope = scope_with((b"x-request-id", b"bad id"), (b"x-request-id", b"good"), (b"x-request-id", b"later"))
    assert Exchange(scope, Sent(), PREFIX).request_id == "good"


def test_headers_as_lists_are_read_too() -> None:
    # ASGI allows any two-item iterables; servers other than uvicorn may send lists.
    scope = scope_with()
    scope["headers"] = [[b"x-request-id", b"from-a-list"]]
    assert Exchange(scope, Sent(), PREFIX).request_id == "from-a-list"


def test_new_ids_are_the_prefix_and_a_counter() -> None:
    ids = [Exchange(scope_with(), Sent(), PREFIX).request_id for _ in range(300)]
    assert len(set(ids)) == 300
    assert all(re.fullmatch(PREFIX + r"[0-9a-f]{8}", rid) for rid in ids)
    numbers = [int(rid[PREFIX_LENGTH:], 16) for rid in ids]
    assert numbers == [(numbers[0] + k) & 0xFFFFFFFF for k in range(300)]


def test_the_state_the_server_gives_is_kept() -> None:
    state = {"from_lifespan": 1}
    scope = scope_with(state=state)
    exchange = Exchange(scope, Sent(), PREFIX)
    assert scope["state"] is state
    assert state == {"from_lifespan": 1, "request_id": exchange.request_id}
    assert request_id(scope) == exchange.request_id


def test_the_response_head_gets_the_id_and_the_handlers_message_is_left_alone() -> None:
    sent = Sent()
    exchange = Exchange(scope_with((b"x-request-id", b"rid-1")), sent, PREFIX)
    asyncio.run(_send_all(exchange, [START, BODY]))
    head, body = sent.messages
    assert head == {**START, "headers": [(b"content-type", b"text/plain"), (b"x-request-id", b"rid-1")]}
    assert START["headers"] == [(b"content-type", b"text/plain")]
    assert body is BODY
    assert exchange.status == 202


def test_a_response_head_without_headers_gets_the_id_alone() -> None:
    sent = Sent()
    exchange = Exchange(scope_with((b"x-request-id", b"rid-2")), sent, PREFIX)
    asyncio.run(_send_all(exchange, [{"type": "http.response.start", "status": 204}]))
    (head,) = sent.messages
    assert head == {"type": "http.response.start", "status": 204, "headers": [(b"x-request-id", b"rid-2")]}


def test_the_status_is_500_until_a_response_starts() -> None:
    assert Exchange(scope_with(), Sent(), PREFIX).status == 500


def test_the_record_has_every_field_of_the_line() -> None:
    exchange = Exchange(scope_with((b"x-request-id", b"rid-3")), Sent(), PREFIX)
    asyncio.run(_send_all(exchange, [START, BODY]))
    record = exchange.record(AccessRecord)
    assert isinstance(record, AccessRecord)
    assert (record.msg, record.request_id, record.method, record.path, record.status, record.client) == (
        "request",
        "rid-3",
        "POST",
        "/api/v2/prodlytics",
        202,
        "127.0.0.1",
    )
    assert 0 <= record.duration_ms < 60_000
    assert record.duration_ms == round(record.duration_ms, 3)
    assert abs(record.ts - time.time()) < 5


@pytest.mark.parametrize("client", [None, ()])
def test_a_request_without_a_client_address_logs_none(client: Any) -> None:
    record = Exchange(scope_with(client=client), Sent(), PREFIX).record(AccessRecord)
    assert record.client is None


def test_misuse_is_a_type_or_value_error() -> None:
    with pytest.raises(ValueError, match="prefix"):
        Exchange(scope_with(), Sent(), "short")
    with pytest.raises(TypeError):
        Exchange([], Sent(), PREFIX)  # type: ignore[arg-type]
    exchange = Exchange(scope_with(), Sent(), PREFIX)
    with pytest.raises(TypeError):
        exchange([("type", "http.response.start")])
    with pytest.raises(TypeError):
        exchange(START, BODY)  # type: ignore[call-arg]


def test_the_middleware_logs_a_request_whose_handler_failed_as_500() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    stream = io.StringIO()
    context = RequestContext(failing, access_log=True, stream=stream)

    async def serve() -> None:
        with pytest.raises(RuntimeError):
            await context(scope_with((b"x-request-id", b"failed-1")), _no_body, Sent())
        context.flush()

    asyncio.run(serve())
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line) | {"ts": 0, "duration_ms": 0} == {
        "ts": 0,
        "msg": "request",
        "request_id": "failed-1",
        "method": "POST",
        "path": "/api/v2/prodlytics",
        "status": 500,
        "duration_ms": 0,
        "client": "127.0.0.1",
    }


def test_the_middleware_passes_other_scopes_through() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    context = RequestContext(app, access_log=True, stream=io.StringIO())
    asyncio.run(context({"type": "lifespan"}, _no_body, Sent()))
    assert seen == [{"type": "lifespan"}]
    assert context._pending == []


async def _send_all(exchange: Exchange, messages: list[Message]) -> None:
    for message in messages:
        await exchange(message)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_scopes_and_messages_that_are_other_mappings_work_alike() -> None:
    class Scope(collections.UserDict[str, Any]):
        pass

    scope = Scope(scope_with((b"x-request-id", b"mapped")))
    sent = Sent()
    exchange = Exchange(scope, sent, PREFIX)
    asyncio.run(_send_all(exchange, [Scope(START), BODY]))
    assert scope["state"] == {"request_id": "mapped"}
    assert sent.messages[0] == {**START, "headers": [*START["headers"], (b"x-request-id", b"mapped")]}
    assert exchange.record(AccessRecord).status == 202


def test_exchanges_keep_no_references_behind() -> None:
    # Native code: every path through it, failures included, must give back what it took.
    send = Sent()
    messages = [dict(START), dict(BODY)]
    scopes = [scope_with((b"x-request-id", rid)) for rid in (b"kept", b"bad id")]
    watched = [*messages, *scopes, send, AccessRecord]

    def exchange_all() -> None:
        for scope in scopes:
            exchange = Exchange(scope, send, PREFIX)
            for message in messages:
                exchange(message).close()  # type: ignore[attr-defined]
            exchange.record(AccessRecord)
            try:
                exchange([1])
            except TypeError:
                pass
            else:
                raise AssertionError("a list is no ASGI message")
        send.messages.clear()

    exchange_all()
    before = [sys.getrefcount(obj) for obj in watched]
    tracemalloc.start()
    try:
        exchange_all()
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):
            exchange_all()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert [sys.getrefcount(obj) for obj in watched] == before
    assert grown < 20_000
