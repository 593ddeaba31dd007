"""The native point parser against msgspec: whatever it takes, it reads exactly as the documented shapes
decode; whatever it does not take, it leaves alone (the intake then decodes it the slow way)."""

from __future__ import annotations

import array
import json
import math

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
