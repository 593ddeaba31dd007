def parse_pairs(
    times: bytearray, values: bytearray, raw: bytes | memoryview, floor_ms: int, ceiling_ms: int, /
) -> int:
    """v1 points `[[epoch seconds, value], ...]` appended as int64 ms and float64; -1 (nothing appended)
    when the text is not on the fast path."""

def parse_objects(
    times: bytearray, values: bytearray, raw: bytes | memoryview, floor_ms: int, ceiling_ms: int, /
) -> int:
    """v2 points `[{"timestamp": epoch seconds, "value": number}, ...]`, likewise."""

def translate_known(
    series: object,
    start: int,
    version: int,
    cache: dict[tuple[str, object, tuple[str, ...]], tuple[int, tuple[str, ...]]],
    kinds: dict[object, tuple[str, str | None, bool]],
    org_id: int,
    headers: list[tuple[int, int, str, int | None, str | None, bool | None, str | None, int]],
    registered: dict[tuple[int, int], tuple[str, tuple[str, ...]]],
    times: bytearray,
    values: bytearray,
    floor_ms: int,
    ceiling_ms: int,
    /,
) -> int:
    """Series from `start` on (v1 or v2 shapes, points raw) whose key is in `cache` and whose points parse:
    their runs appended and their series registered; returns the index of the first series left to
    Python (len(series) when none)."""
