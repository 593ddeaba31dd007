"""The native point parser against msgspec: whatever it takes, it reads exactly as the documented shapes
decode; whatever it does not take, it leaves alone (the intake then decodes it the slow way)."""

from __future__ import annotations

import array
import json
import math
import re

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from sextant.faces.datadog._points import parse_objects, parse_pairs

FLOOR, CEILING = 0, 2**62
V1 = msgspec.json.Decoder(list[tuple[float, float]])


class Point(msgspec.Struct):
    timestamp: int
    value: float


V2 = msgspec.json.Decoder(list[Point])


def run(
    parse: object, raw: bytes, floor: int = FLOOR, ceiling: int = CEILING
) -> tuple[int, list[int], list[float]]:
    times, values = bytearray(b"prefix00"), bytearray(b"prefix00")
    n = parse(times, values, raw, floor, ceiling)  # type: ignore[operator]
    assert times[:8] == b"prefix00" and values[:8] == b"prefix00"  # appended after what was there
    return n, array.array("q", times[8:]).tolist(), array.array("d", values[8:]).tolist()


def v1_expected(raw: bytes) -> tuple[list[int], list[float]] | None:
    try:
        points = V1.decode(raw)
        return [round(t * 1000) for t, _ in points], [v for _, v in points]
    except (msgspec.MsgspecError, OverflowError):  # the intake refuses a time it cannot convert
        return None


def v2_expected(raw: bytes) -> tuple[list[int], list[float]] | None:
    try:
        points = V2.decode(raw)
    except msgspec.MsgspecError:
        return None
    return [p.timestamp * 1000 for p in points], [p.value for p in points]


def test_plain_pairs_and_objects() -> None:
    assert run(parse_pairs, b"[[1700000000, 1.5], [1700000000.123, -2e3] ]") == (
        2,
        [1_700_000_000_000, 1_700_000_000_123],
        [1.5, -2000.0],
    )
    assert run(parse_objects, b'[{"value": 3, "timestamp": 17}, {"timestamp":18,"value":-0.25}]') == (
        2,
        [17_000, 18_000],
        [3.0, -0.25],
    )
    assert run(parse_pairs, b" [ ] ")[0] == 0 and run(parse_objects, b"[]")[0] == 0


def test_anything_unusual_is_left_to_the_slow_path_untouched() -> None:
    for raw in [
        b'[["1", 2]]',  # a string
        b"[[1, 2, 3]]",  # three items
        b"[[1, 2]] x",  # trailing text
        b"[[01, 2]]",  # not JSON
        b"[[1, 1e999]]",  # not finite
        b"[[1, NaN]]",
        b"{}",
    ]:
        assert run(parse_pairs, raw) == (-1, [], [])
    for raw in [
        b'[{"timestamp": 1.5, "value": 2}]',  # v2 times are integers
        b'[{"timestamp": 1, "value": 2, "x": 3}]',  # another key
        b'[{"timestamp": 1}]',
        b'[{"timestamp": 1, "timestamp": 2}]',
        b'[{"time\\u0073tamp": 1, "value": 2}]',  # an escaped key
    ]:
        assert run(parse_objects, raw) == (-1, [], [])
    # Outside the accepted window: the slow path says which point.
    assert run(parse_pairs, b"[[10, 1], [20, 1]]", floor=0, ceiling=15_000) == (-1, [], [])


NUMBERS = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from(["1e3", "-0", "0.5E-2", "1.7976931348623157e308", "5e-324", "12345678901234567890"]),
)


def render(number: object) -> str:
    return number if isinstance(number, str) else json.dumps(number)


@settings(max_examples=300, deadline=None)
@given(
    pairs=st.lists(st.tuples(NUMBERS, NUMBERS), max_size=6),
    space=st.sampled_from(["", " ", "\n\t", "  "]),
)
def test_pairs_read_exactly_as_msgspec_reads_them(pairs: list[tuple[object, object]], space: str) -> None:
    raw = (
        "[" + f",{space}".join(f"[{space}{render(t)},{space}{render(v)}{space}]" for t, v in pairs) + "]"
    ).encode()
    n, times, values = run(parse_pairs, raw, floor=-(2**62), ceiling=2**62)
    expected = v1_expected(raw)
    if n >= 0:
        assert expected is not None and n == len(pairs)
        assert times == expected[0]
        assert all(
            a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(values, expected[1], strict=True)
        )
    else:
        assert (times, values) == ([], [])


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(st.tuples(NUMBERS, NUMBERS, st.booleans()), max_size=6),
    space=st.sampled_from(["", " ", "\n"]),
)
def test_objects_read_exactly_as_msgspec_reads_them(
    points: list[tuple[object, object, bool]], space: str
) -> None:
    items = []
    for t, v, value_first in points:
        fields = [f'"timestamp":{space}{render(t)}', f'"value":{space}{render(v)}']
        items.append("{" + f",{space}".join(reversed(fields) if value_first else fields) + "}")
    raw = ("[" + ",".join(items) + "]").encode()
    n, times, values = run(parse_objects, raw, floor=-(2**62), ceiling=2**62)
    expected = v2_expected(raw)
    if n >= 0:
        assert expected is not None and n == len(points) and (times, values) == expected
    else:
        assert (times, values) == ([], [])


# --- whole series: the native translation of known series equals the Python translation -------------------

SERIES_V1 = st.fixed_dictionaries(
    {
        "metric": st.sampled_from(["a.b", "cpu", "x_y"]),
        "points": st.lists(st.tuples(st.integers(0, 10**6), NUMBERS), max_size=4),
    },
    optional={
        "type": st.sampled_from(["gauge", "rate", "count", "", None]),
        "interval": st.one_of(st.none(), st.integers(0, 100)),
        "host": st.one_of(st.none(), st.sampled_from(["", "h1", "h2"])),
        "tags": st.one_of(st.none(), st.lists(st.sampled_from(["env:prod", "b", "env:dev"]), max_size=3)),
    },
)
SERIES_V2 = st.fixed_dictionaries(
    {
        "metric": st.sampled_from(["a.b", "cpu"]),
        "points": st.lists(
            st.fixed_dictionaries({"timestamp": st.integers(0, 10**6), "value": NUMBERS}), max_size=4
        ),
    },
    optional={
        "type": st.sampled_from([0, 1, 2, 3, None]),
        "interval": st.one_of(st.none(), st.integers(0, 100)),
        "unit": st.one_of(st.none(), st.sampled_from(["", "byte", "ms"])),
        "tags": st.one_of(st.none(), st.lists(st.sampled_from(["env:prod", "b"]), max_size=2)),
        "resources": st.one_of(
            st.none(),
            st.lists(
                st.fixed_dictionaries({"name": st.sampled_from(["h1", "h2"]), "type": st.just("host")}),
                max_size=2,
            ),
        ),
    },
)


def translations(
    payload: bytes, version: int
) -> list[tuple[dict[str, list[object]], dict[object, object]] | str]:
    """The same payload translated with an empty series cache (Python takes every series), then again with
    the cache that left (the native translation takes the known ones)."""
    from sextant.faces.datadog.metrics_intake import (
        InvalidSeries,
        SeriesIds,
        _decoder,
        _RawPointsPayload,
        _RawPointsPayloadV1,
        _translate_v1,
        _translate_v2,
    )

    ids = SeriesIds()
    translate = (
        _decoder(_RawPointsPayloadV1, _translate_v1, ids)
        if version == 1
        else _decoder(_RawPointsPayload, _translate_v2, ids)
    )
    out: list[tuple[dict[str, list[object]], dict[object, object]] | str] = []
    for _ in range(2):
        try:
            batch = translate(payload, 1, 10**9)
        except InvalidSeries as exc:
            out.append(str(exc))
            continue
        columns = batch.columns()
        out.append(({k: [repr(v) for v in vs] for k, vs in columns.items()}, dict(batch.series)))
    return out


JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def render_json(doc: object) -> bytes:
    """JSON with the NUMBERS strategy's texts (`1e3`, `-0`) written as the numbers they spell."""
    if isinstance(doc, dict):
        return b"{" + b",".join(json.dumps(k).encode() + b":" + render_json(v) for k, v in doc.items()) + b"}"
    if isinstance(doc, list | tuple):
        return b"[" + b",".join(render_json(v) for v in doc) + b"]"
    if isinstance(doc, str) and JSON_NUMBER.fullmatch(doc):
        return doc.encode()
    return json.dumps(doc).encode()


@settings(max_examples=200, deadline=None)
@given(series=st.lists(SERIES_V1, max_size=5))
def test_native_v1_translation_equals_python(series: list[dict[str, object]]) -> None:
    cold, warm = translations(render_json({"series": series}), 1)
    assert cold == warm


@settings(max_examples=200, deadline=None)
@given(series=st.lists(SERIES_V2, max_size=5))
def test_native_v2_translation_equals_python(series: list[dict[str, object]]) -> None:
    cold, warm = translations(render_json({"series": series}), 2)
    assert cold == warm
