# times, names, stored application ids, usr ids, account ids, session ids, attribute JSON texts, list paths
NativeColumns = tuple[
    list[int],
    list[str],
    list[str | None],
    list[str | None],
    list[str | None],
    list[str | None],
    list[str],
    set[str],
]

def translate(
    body: bytes, max_depth: int, apps: dict[str, str], now: int, earliest: int, latest: int, /
) -> NativeColumns | str | None: ...
def translate_request(
    headers: object,
    message: object,
    routes: dict[bytes, tuple[int, dict[str, str]]],
    now: int,
    earliest: int,
    latest: int,
    max_bytes: int,
    max_depth: int,
    /,
) -> tuple[int, NativeColumns] | None: ...
