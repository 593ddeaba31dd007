"""Seasons by name, as anomalies() and forecast() take them, and a season's length in buckets.

A season is a fixed length: hourly 3600 s, daily 86400 s, weekly 604800 s. (Datadog's `timezone` argument
moves daily and weekly seasons with a zone's daylight-saving changes; here it is checked and accepted, and
a season stays a fixed number of buckets: across a change the pattern is off by an hour for a season.)
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sextant.series.functions.errors import FunctionArgumentError

Seasonality = Literal["hourly", "daily", "weekly"]
SEASONALITIES: tuple[Seasonality, ...] = ("hourly", "daily", "weekly")
SEASON_SECONDS: dict[Seasonality, int] = {"hourly": 3600, "daily": 86400, "weekly": 604800}


def season_ms(seasonality: Seasonality) -> int:
    return SEASON_SECONDS[seasonality] * 1000


def season_buckets(function: str, seasonality: Seasonality, step_ms: int) -> int:
    """Buckets in one season; a season of fewer than 4 buckets has no shape to learn."""
    buckets = round(season_ms(seasonality) / step_ms)
    if buckets < 4:
        raise FunctionArgumentError(
            function,
            f"seasonality '{seasonality}' needs at least 4 buckets per season, and the query's buckets are "
            f"{step_ms // 1000} s long: use a shorter time window or a longer seasonality",
            argument="seasonality",
            given=seasonality,
        )
    return buckets


def parse_timezone(name: str) -> str:
    """An IANA zone name or UTC, as given; ValueError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(name) from None
    return name
