from collections.abc import Container
from typing import Any

class DepthError(Exception):
    """The document is nested deeper than max_depth."""

def flatten(document: dict[str, Any], max_depth: int, skip: Container[str], /) -> dict[str, Any]: ...
