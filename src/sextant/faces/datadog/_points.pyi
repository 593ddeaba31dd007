def parse_pairs(
    times: bytearray, values: bytearray, raw: bytes | memoryview, floor_ms: int, ceiling_ms: int, /
) -> int:
    """v1 points `[[epoch seconds, value], ...]` appended as int64 ms and float64; -1 (nothing appended)
    when the text is not on the fast path."""

def parse_objects(
    times: bytearray, values: bytearray, raw: bytes | memoryview, floor_ms: int, ceiling_ms: int, /
) -> int:
    """v2 points `[{"timestamp": epoch seconds, "value": number}, ...]`, likewise."""
