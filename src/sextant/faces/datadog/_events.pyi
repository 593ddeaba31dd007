def translate(
    body: bytes, max_depth: int, /
) -> (
    tuple[
        list[str],
        list[str],
        list[str | None],
        list[str | None],
        list[str | None],
        list[int | None],
        list[str],
        set[str],
    ]
    | None
): ...
