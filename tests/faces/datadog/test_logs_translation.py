"""The pure parts of the logs face: status and date remapping, tags, the Log Explorer vocabulary, search
times and sorts, and nesting flattened attributes back for the search response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sextant.core.timeutil import DAY_MS, HOUR_MS
from sextant.faces.datadog.analytics_request import RequestError
from sextant.faces.datadog.logs_intake import date_of, split_tags, status_of
from sextant.faces.datadog.logs_search import LOGS_VOCABULARY, nest, parse_sort, parse_time
from sextant.query.filters import And, Compare, Exists, Field, Not, Or, Term, Text, Wildcard
from sextant.query.search_syntax import SearchSyntaxError, parse_search

NOW = int(datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp() * 1000)


# --- status remapping (Datadog's log status remapper) -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (0, "emerg"),
        (3, "error"),
        (4, "warning"),
        (7, "debug"),
        (8, "info"),
        (30, "info"),  # pino's numeric levels are not syslog severities
        (-1, "info"),
        (True, "info"),
        ("EMERGENCY", "emerg"),
        ("fatal", "emerg"),
        ("Alert", "alert"),
        ("crit", "critical"),
        ("ERROR", "error"),
        ("err", "error"),
        ("exception", "info"),
        ("warn", "warning"),
        ("notice", "notice"),
        ("INFO", "info"),
        ("debug", "debug"),
        ("trace", "debug"),
        ("verbose", "debug"),
        ("OK", "ok"),
        ("success", "ok"),
        ("", "info"),
        ("something else", "ok"),
        (None, "info"),
        (2.0, "info"),
    ],
)
def test_status_remapping(value: Any, status: str) -> None:
    assert status_of(value) == status


# --- dates ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NOW, NOW),
        (float(NOW) + 0.7, NOW),
        (str(NOW), NOW),
        ("2026-03-10T12:00:00Z", NOW),
        ("2026-03-10T12:00:00.250Z", NOW + 250),
        ("2026-03-10T13:00:00+01:00", NOW),
        ("2026-03-10T12:00:00", NOW),  # no offset: UTC
        ("2026-03-10 12:00:00,5", NOW + 500),
        ("Mar 10 12:00:00", NOW),  # RFC 3164: this year
        ("Mar  9 12:00:00", NOW - DAY_MS),
        ("Dec 31 23:00:00", int(datetime(2025, 12, 31, 23, tzinfo=UTC).timestamp() * 1000)),  # last year
        ("yesterday", None),
        ("Feb 30 10:00:00", None),
        (True, None),
        ({"t": 1}, None),
        (float("nan"), None),
    ],
)
def test_dates_in_recognized_formats(value: Any, expected: int | None) -> None:
    assert date_of(value, NOW) == expected


def test_ddtags_split() -> None:
    assert split_tags("env:prod, team:core,,bare ,") == ["env:prod", "team:core", "bare"]
    assert split_tags("") == []


# --- the Log Explorer's vocabulary ------------------------------------------------------------------------

MESSAGE, TAGS = Field("message"), Field("tags")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("hello", Text(MESSAGE, "hello")),
        ("web*", Text(MESSAGE, "web*")),
        ('"a*b c"', Text(MESSAGE, "a\\*b c")),
        ("*:hello", Term(None, "hello")),
        ("_default_:hello", Term(None, "hello")),
        ("*", None),
        ("service:web", Term(Field("service"), "web")),
        ("host:web-1", Term(Field("host"), "web-1")),
        ("status:(error OR warning)", Or((Term(Field("status"), "error"), Term(Field("status"), "warning")))),
        ("service:we*", Wildcard(Field("service"), "we*")),
        ("env:prod", Term(TAGS, "env:prod")),
        ("source:nginx", Term(TAGS, "source:nginx")),
        ("env:pr*", Wildcard(TAGS, "env:pr*")),
        ("env:*", Wildcard(TAGS, "env:*")),
        ("_exists_:env", Wildcard(TAGS, "env:*")),
        ("_missing_:env", Not(Wildcard(TAGS, "env:*"))),
        ("_exists_:service", Exists(Field("service"))),
        ("k\\*ey:v", Term(TAGS, "k*ey:v")),
        ("k\\*ey:*", Wildcard(TAGS, "k\\*ey:*")),
        ("tags:bare", Term(TAGS, "bare")),
        ("tags:env:prod", Term(TAGS, "env:prod")),
        ("-env:prod hello", And((Not(Term(TAGS, "env:prod")), Text(MESSAGE, "hello")))),
        ("@http.path:/home", Term(Field("http.path"), "/home")),
    ],
)
def test_log_explorer_vocabulary(query: str, expected: Any) -> None:
    parsed = parse_search(query, LOGS_VOCABULARY)
    if expected is None:
        assert type(parsed).__name__ == "MatchAll"
    else:
        assert parsed == expected


def test_default_vocabulary_is_unchanged() -> None:
    assert parse_search("env:prod hello") == And((Term(Field("env", tag=True), "prod"), Term(None, "hello")))


@pytest.mark.parametrize("query", ["env:>3", "version:[1 TO 2]"])
def test_tags_have_no_order(query: str) -> None:
    with pytest.raises(SearchSyntaxError, match=r"an attribute \(@.*\) for a comparison or range"):
        parse_search(query, LOGS_VOCABULARY)


def test_reserved_attributes_compare() -> None:
    assert parse_search("status:>e", LOGS_VOCABULARY) == Compare(Field("status"), ">", "e")


# --- search times and sorts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, NOW - 15 * 60_000),  # the default, now-15m
        ("now", NOW),
        ("now-15m", NOW - 15 * 60_000),
        ("now - 2d", NOW - 2 * DAY_MS),
        ("now+1h", NOW + HOUR_MS),
        ("-1w", NOW - 7 * DAY_MS),
        ("+30s", NOW + 30_000),
        (NOW - 5, NOW - 5),
        (str(NOW), NOW),
        ("2026-03-10T12:00:00+00:00", NOW),
        ("2026-03-10T12:00:00Z", NOW),
        ("2026-03-10T12:00:00", NOW),
    ],
)
def test_search_times(value: str | int | None, expected: int) -> None:
    assert parse_time(value, "now-15m", "filter.from", NOW) == expected


@pytest.mark.parametrize("value", ["", "yesterday", "now-15", "now-1y", "now/d"])
def test_bad_search_times(value: str) -> None:
    with pytest.raises(RequestError, match=r"filter\.from .* is not a time"):
        parse_time(value, "now", "filter.from", NOW)


@pytest.mark.parametrize(
    ("sort", "field", "descending"),
    [
        (None, None, True),
        ("timestamp", None, False),
        ("-timestamp", None, True),
        ("@duration", Field("duration"), False),
        ("-@http.status", Field("http.status"), True),
        ("service", Field("service"), False),
        ("-status", Field("status"), True),
    ],
)
def test_sorts(sort: str | None, field: Field | None, descending: bool) -> None:
    _, parsed, desc = parse_sort(sort)
    assert (parsed, desc) == (field, descending)


@pytest.mark.parametrize("sort", ["env", "@", "-@", "@a.", "time"])
def test_bad_sorts(sort: str) -> None:
    with pytest.raises(RequestError, match="is not a sort"):
        parse_sort(sort)


# --- nesting the stored attributes back -------------------------------------------------------------------


def test_nest() -> None:
    assert nest({"a.b": 1, "a.c.d": [1, 2], "e": "x"}) == {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}
    # A path under one that holds a value stays dotted, in either order.
    assert nest({"a": 1, "a.b": 2}) == {"a": 1, "a.b": 2}
    assert nest({"a.b": 2, "a": 1}) == {"a.b": 2, "a": 1}
    assert nest({"a.b.c": 1, "a.b": 2, "a.x": 3}) == {"a.b.c": 1, "a": {"b": 2, "x": 3}}
    assert nest({}) == {}
