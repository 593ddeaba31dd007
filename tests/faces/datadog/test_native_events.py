"""The native translation of prodlytics bodies (faces/datadog/_events.c) against the Python path: where it
accepts a body it gives the same events, and it leaves every body it is not sure of to the Python path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sextant.control.apps import Application
from sextant.core.events import EventBatch
from sextant.faces.datadog._events import translate, translate_request
from sextant.faces.datadog.server_side_events import InvalidEvent, ServerSideEvents

NOW = 1_780_000_000_000
APP = "5d3c9f2e-8f0a-4a57-9d8e-0f6a1b2c3d4e"
OTHER_ORG_APP = "0b1d4c55-aaaa-4bbb-8ccc-000000000001"
DEPTH = 6
ORG = 7


def applications(app_id: str) -> Application | None:
    known = {
        APP: Application(id=APP, org_id=ORG, name="shop", enabled=True, created_at=0),
        OTHER_ORG_APP: Application(id=OTHER_ORG_APP, org_id=ORG + 1, name="x", enabled=True, created_at=0),
    }
    return known.get(app_id)


def python_batch(body: bytes) -> EventBatch | str:
    """What the Python path makes of a body: the batch, or its error."""
    document = json.loads(body)
    items = document if isinstance(document, list) else [document]
    batch = EventBatch()
    events = ServerSideEvents(applications, ORG, DEPTH)
    try:
        for item in items:
            events.add(batch, item, NOW)
    except InvalidEvent as exc:
        return str(exc)
    return batch


def native_batch(body: bytes) -> EventBatch | None:
    return ServerSideEvents(applications, ORG, DEPTH).translate_body(body, NOW)


def assert_same_events(native: EventBatch, python: EventBatch) -> None:
    for column in EventBatch.__slots__:
        if column not in ("attributes", "array_paths"):
            assert getattr(native, column) == getattr(python, column), column
    assert native.array_paths == python.array_paths
    for got, expected in zip(native.attributes, python.attributes, strict=True):
        # The same paths in the same order, and the same JSON values (numbers are kept as written).
        assert list(json.loads(got).items()) == list(json.loads(expected).items())


def check(body: bytes) -> EventBatch | None:
    native = native_batch(body)
    python = python_batch(body)
    if native is not None:
        assert isinstance(python, EventBatch), f"native accepted what Python refuses: {python}"
        assert_same_events(native, python)
    return native


def event(**extra: Any) -> dict[str, Any]:
    return {
        "application": {"id": APP},
        "event": {"name": "payment.processed"},
        "type": "server",
        "usr": {"id": "user-1"},
        **extra,
    }


def body_of(document: Any, **dumps: Any) -> bytes:
    return json.dumps(document, **dumps).encode()


@pytest.mark.parametrize(
    "document",
    [
        event(),
        event(customer={"tier": "premium"}, amount=12.5, count=3, ok=True, gone=None),
        event(items=[{"sku": "a", "qty": 1}, {"sku": "b"}], tags=["x", "y"], empty=[], nested=[[1, 2], [3]]),
        event(**{"a.b": 1, "a": {"b": 2}}),  # one path spelled twice keeps both values
        event(usr={"id": "u", "plan": "pro"}, account={"id": "acct"}, session={"id": "s"}),
        event(date=NOW - 60_000),
        event(text='quote " backslash \\ newline \n tab \t unicode é ✓ 𝄞 control \u0001 slash /'),
        event(**{"": {"x": 1}, "deep": {"a": {"b": {"c": 1}}}, "usr": {"id": "u", "": 2}}),
        [event(), event(usr={"id": "user-2"}, date=NOW - 1)],
    ],
)
def test_the_usual_bodies_take_the_native_path_and_agree(document: Any) -> None:
    for body in (body_of(document), body_of(document, separators=(",", ":")), body_of(document, indent=2)):
        assert check(body) is not None, body


def test_escaped_strings_are_stored_as_their_value() -> None:
    body = b'{"application":{"id":"%s"},"event":{"name":"n"},"type":"server","usr":{"id":"u"},' % APP.encode()
    body += b'"s":"\\u00e9\\/\\"\\\\\\n\\u0000\\u20ac"}'
    native = check(body)
    assert native is not None
    assert json.loads(native.attributes[0]) == {"s": 'é/"\\\n\x00€'}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"[]", "empty batch"),
        (b"[1]", "not an object"),
        (b'{"a":1} x', "trailing text"),
        (body_of(event(type="client")), "another type"),
        (body_of({**event(), "type": None}), "null type"),
        (body_of({k: v for k, v in event().items() if k != "usr"}), "no id at all"),
        (body_of(event(usr={"name": "no id"})), "usr without id"),
        (body_of(event(usr={"id": ""})), "empty id"),
        (body_of(event(usr={"id": 5})), "id not a string"),
        (body_of(event(usr="u")), "usr not an object"),
        (body_of({**event(), "application": {"id": "unknown"}}), "unknown application"),
        (body_of({**event(), "application": {"id": OTHER_ORG_APP}}), "another organization's app"),
        (body_of(event(date=1)), "date out of range"),
        (body_of(event(date=1.5)), "date not an integer"),
        (body_of(event(date=True)), "date a boolean"),
        (body_of(event(big=12345678901234567890)), "integer past 18 digits"),
        (body_of(event(x=1e300)), "exponent"),
        (body_of(event(deep={"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}})), "deeper than the limit"),
        (body_of(event(wide={f"k{i}": i for i in range(65)})), "wider than the native bound"),
        (
            b'{"application":{"id":"%s"},"event":{"name":"n"},"type":"server","usr":{"id":"u"},"\\u0061":1}'
            % APP.encode(),
            "escape in a key",
        ),
        (
            b'{"application":{"id":"%s"},"event":{"name":"n"},"type":"server","usr":{"id":"u"},"a":1,"a":2}'
            % APP.encode(),
            "duplicate key",
        ),
        (
            b'{"application":{"id":"%s"},"event":{"name":"n"},"type":"server","usr":{"id":"u"},"s":"\\ud83d"}'
            % APP.encode(),
            "lone high surrogate",
        ),
        (
            b'{"application":{"id":"%s"},"event":{"name":"n"},"type":"server","usr":{"id":"u"},"s":"\\udd1e"}'
            % APP.encode(),
            "lone low surrogate",
        ),
        (
            b'{"application":{"id":"%s"},"event":{"name":"n"},"type":"server","usr":{"id":"u"},"s":"\xff"}'
            % APP.encode(),
            "invalid UTF-8",
        ),
        (
            b'{"application":{"id":"%s"},"event":{"name":"n"},"type":"server","usr":{"id":"u"},"n":01}'
            % APP.encode(),
            "leading zero",
        ),
    ],
)
def test_what_the_native_path_is_not_sure_of_goes_the_python_way(body: bytes, why: str) -> None:
    assert native_batch(body) is None, why


_keys = st.sampled_from(["a", "b", "a.b", "", "id", "name", "usr", "event", "type", "date"]) | st.text(
    st.characters(codec="utf-8"), max_size=4
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=6)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)
_ids = st.text(max_size=3) | st.integers(0, 3) | st.none()
_parent = st.fixed_dictionaries({}, optional={"id": _ids, "name": _ids, "x": _values})


_standard_changes = st.fixed_dictionaries(
    {},
    optional={
        "application": _parent,
        "event": _parent,
        "type": _scalars,
        "usr": _parent | _scalars,
        "account": _parent,
        "session": _parent,
        "date": st.integers(NOW - 10**9, NOW) | _scalars,
    },
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """Mostly valid events with any attributes; some with standard fields changed or left out."""
    item: dict[str, Any] = draw(st.dictionaries(_keys, _values, max_size=4))
    item.update(event())
    if draw(st.integers(0, 3)) == 0:
        item.update(draw(_standard_changes))
        for key in draw(st.lists(st.sampled_from(["application", "event", "type", "usr"]), max_size=2)):
            item.pop(key, None)
    return item


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents(), min_size=1, max_size=3), st.booleans())
def test_generated_bodies_agree_with_the_python_path(items: list[Any], batched: bool) -> None:
    body = body_of(items if batched else items[0], ensure_ascii=False)
    check(body)


# --- the native pass's own interface: known applications, event times, whole requests ---------------------

KEY = b"0123456789abcdef0123456789abcdef"
EARLIEST, LATEST = NOW - 1_000, NOW + 1_000
STORED = "stored-" + APP


def columns_of(body: bytes, apps: dict[str, str] | None = None) -> Any:
    return translate(body, DEPTH, {APP: STORED} if apps is None else apps, NOW, EARLIEST, LATEST)


def test_an_application_not_yet_known_is_named_for_the_caller_to_check() -> None:
    body = body_of([event(), {**event(), "application": {"id": OTHER_ORG_APP}}])
    assert columns_of(body, {}) == APP
    assert columns_of(body) == OTHER_ORG_APP
    assert columns_of(body, {APP: APP, OTHER_ORG_APP: "other"})[2] == [APP, "other"]


def test_events_carry_the_stored_application_id_and_the_receive_time_unless_dated() -> None:
    times, names, app_ids, usrs, accounts, sessions, attributes, array_paths = columns_of(
        body_of([event(), event(date=EARLIEST), event(date=LATEST, session={"id": "s"}, tags=["a"])])
    )
    assert times == [NOW, EARLIEST, LATEST]
    assert app_ids == [STORED] * 3
    assert names == ["payment.processed"] * 3
    assert (usrs, accounts, sessions) == (["user-1"] * 3, [None] * 3, [None, None, "s"])
    assert json.loads(attributes[2]) == {"date": LATEST, "tags": ["a"]}
    assert array_paths == {"tags"}


@pytest.mark.parametrize("date", [EARLIEST - 1, LATEST + 1])
def test_a_date_outside_the_window_goes_the_python_way(date: int) -> None:
    assert columns_of(body_of(event(date=date))) is None


def request(
    body: bytes,
    headers: Any = None,
    message: dict[str, Any] | None = None,
    max_bytes: int = 10_000,
) -> Any:
    routes = {KEY: (ORG, {APP: STORED})}
    message = {"type": "http.request", "body": body, "more_body": False} if message is None else message
    headers = [(b"content-type", b"application/json"), (b"dd-api-key", KEY)] if headers is None else headers
    return translate_request(headers, message, routes, NOW, EARLIEST, LATEST, max_bytes, DEPTH)


def test_a_usual_request_is_translated_in_one_call() -> None:
    body = body_of(event(customer={"tier": "premium"}))
    org_id, columns = request(body)
    assert org_id == ORG
    assert columns == columns_of(body)
    assert columns[2] == [STORED]
    with_identity = [(b"dd-api-key", KEY), (b"content-encoding", b"identity"), (b"dd-api-key", b"other")]
    assert request(body, with_identity) == (ORG, columns)


@pytest.mark.parametrize(
    ("headers", "message", "max_bytes", "why"),
    [
        ([(b"content-type", b"application/json")], None, 10_000, "no key"),
        ([(b"dd-api-key", b"f" * 32)], None, 10_000, "a key not known valid for this intake"),
        ([(b"dd-api-key", b"other"), (b"dd-api-key", KEY)], None, 10_000, "the first key counts"),
        ([(b"dd-api-key", KEY), (b"content-encoding", b"gzip")], None, 10_000, "an encoded body"),
        (None, {"type": "http.request", "body": b"{", "more_body": True}, 10_000, "more body to come"),
        (None, {"type": "http.disconnect"}, 10_000, "a disconnect"),
        (None, None, 10, "a body over the bound"),
        (((b"dd-api-key", KEY),), None, 10_000, "headers not in a list"),
    ],
)
def test_any_other_request_takes_the_general_path(
    headers: Any, message: dict[str, Any] | None, max_bytes: int, why: str
) -> None:
    assert request(body_of(event()), headers, message, max_bytes) is None, why


def test_a_message_that_is_not_a_dict_takes_the_general_path() -> None:
    routes = {KEY: (ORG, {APP: STORED})}
    message = [("type", "http.request")]
    assert (
        translate_request([(b"dd-api-key", KEY)], message, routes, NOW, EARLIEST, LATEST, 10, DEPTH) is None
    )


@pytest.mark.parametrize(
    "document",
    [{**event(), "application": {"id": OTHER_ORG_APP}}, event(type="client"), event(date=LATEST + 1)],
)
def test_a_request_the_native_pass_does_not_accept_takes_the_general_path(document: Any) -> None:
    assert request(body_of(document)) is None
