"""The Datadog search syntax parser: exact trees, the reference's test vectors (through the in-Python
matcher), operator precedence, errors, and properties over arbitrary and generated queries."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sextant.core.events import flatten_attributes
from sextant.query.filters import (
    And,
    Compare,
    Exists,
    Field,
    Filter,
    MatchAll,
    MatchNone,
    Not,
    Or,
    Range,
    Term,
    Wildcard,
)
from sextant.query.search_syntax import (
    MAX_NESTING_DEPTH,
    MAX_QUERY_LENGTH,
    SearchSyntaxError,
    parse_search,
)
from tests.query.matcher import STANDARD_FIELDS, matches


def attr(path: str) -> Field:
    return Field(path)


def tag(path: str) -> Field:
    return Field(path, tag=True)


def free(text: str) -> Term:
    return Term(None, text)


def event(doc: dict[str, Any] | None = None, **standard: str) -> dict[str, Any]:
    """An event as stored: standard fields (keyword names use `_` for `.`) plus flattened attributes."""
    out: dict[str, Any] = dict.fromkeys(STANDARD_FIELDS)
    out.update({k.replace("_", "."): v for k, v in standard.items()})
    out.update(flatten_attributes(doc or {}, max_depth=32))
    return out


# --- exact trees -----------------------------------------------------------------------------------------

A, B, C = free("a"), free("b"), free("c")

TREES: list[tuple[str, Filter]] = [
    # match all / none
    ("", MatchAll()),
    ("   \n\t ", MatchAll()),
    ("*", MatchAll()),
    ("*:*", MatchAll()),
    ("_default_:*", MatchAll()),
    ("foo:(*:*)", MatchAll()),
    ("NOT *", MatchNone()),
    ("-*", MatchNone()),
    ("NOT *:*", MatchNone()),
    ("foo:(NOT *:*)", MatchNone()),
    ("* a", A),
    # free text
    ("hello", free("hello")),
    ("hello world", And((free("hello"), free("world")))),
    ('"hello world"', free("hello world")),
    ("\u201chello world\u201d", free("hello world")),
    ('"say \\"hi\\" \\\\ *"', free('say "hi" \\ *')),
    ("and or not to", And((free("and"), free("or"), free("not"), free("to")))),
    ("foo-bar a+b x=y", And((free("foo-bar"), free("a+b"), free("x=y")))),
    ("*bla", Wildcard(None, "*bla")),
    ("he?lo", Wildcard(None, "he?lo")),
    ("_default_:hello", free("hello")),
    ("*:hello", free("hello")),
    ("\\@handle", free("@handle")),
    # fields
    ("@a:x", Term(attr("a"), "x")),
    ("@http.url_details.path:/home", Term(attr("http.url_details.path"), "/home")),
    ("env:prod", Term(tag("env"), "prod")),
    ("service:web", Term(tag("service"), "web")),
    ("host:h1", Term(tag("host"), "h1")),
    ("@type:server", Term(attr("type"), "server")),
    ("@user.first\\ name:myvalue", Term(attr("user.first name"), "myvalue")),
    ("@a:va\\ lue", Term(attr("a"), "va lue")),
    ("@a:va\\/lue", Term(attr("a"), "va/lue")),
    ('@my_attribute:"hello:world"', Term(attr("my_attribute"), "hello:world")),
    ("@url:http://x.io/a", Term(attr("url"), "http://x.io/a")),
    ("@a:-5", Term(attr("a"), "-5")),
    ("@a:AND", Term(attr("a"), "AND")),
    ('@a:""', Term(attr("a"), "")),
    ('@a:"*test*"', Term(attr("a"), "*test*")),
    # wildcards and escapes
    ("@a:web*", Wildcard(attr("a"), "web*")),
    ("@c:*b*la*", Wildcard(attr("c"), "*b*la*")),
    ("@my_attribute:hello?world", Wildcard(attr("my_attribute"), "hello?world")),
    ("@a:va\\*lue", Term(attr("a"), "va*lue")),
    ("@a:va\\?lue", Term(attr("a"), "va?lue")),
    ("@a:va\\*l*", Wildcard(attr("a"), "va\\*l*")),
    ("@a:a\\\\b*", Wildcard(attr("a"), "a\\\\b*")),
    ("@a:a\\:b*", Wildcard(attr("a"), "a:b*")),
    ("@http.url:https:\\/\\/*", Wildcard(attr("http.url"), "https://*")),
    ("@url:*user\\=JaneDoe*", Wildcard(attr("url"), "*user=JaneDoe*")),
    # existence
    ("@a:*", Exists(attr("a"))),
    ("env:*", Exists(tag("env"))),
    ("_exists_:@a", Exists(attr("a"))),
    ("_exists_:a", Exists(tag("a"))),
    ("_missing_:@a", Not(Exists(attr("a")))),
    ("-@http.status_code:*", Not(Exists(attr("http.status_code")))),
    # comparisons
    ("@a:>100", Compare(attr("a"), ">", 100.0)),
    ("@a:>=100", Compare(attr("a"), ">=", 100.0)),
    ("@a:<100", Compare(attr("a"), "<", 100.0)),
    ("@a:<=100", Compare(attr("a"), "<=", 100.0)),
    ("@a:>-1.5", Compare(attr("a"), ">", -1.5)),
    ("@a:>+2", Compare(attr("a"), ">", 2.0)),
    ("@a:<4.12345E-4", Compare(attr("a"), "<", 4.12345e-4)),
    ("@a:<1e3", Compare(attr("a"), "<", 1000.0)),
    ("@a:>=bar", Compare(attr("a"), ">=", "bar")),
    ("@a:>b*r", Compare(attr("a"), ">", "b*r")),
    ("@a:>\\-5", Compare(attr("a"), ">", -5.0)),
    ("env:>v2", Compare(tag("env"), ">", "v2")),
    # durations, in nanoseconds
    ("@d:>3ns", Compare(attr("d"), ">", 3.0)),
    ("@d:>3us", Compare(attr("d"), ">", 3e3)),
    ("duration:>20ms", Compare(tag("duration"), ">", 20e6)),
    ("@view.loading_time:>3s", Compare(attr("view.loading_time"), ">", 3e9)),
    ("@d:<1.5m", Compare(attr("d"), "<", 90e9)),
    ("@d:<2h", Compare(attr("d"), "<", 7200e9)),
    ("@d:<1d", Compare(attr("d"), "<", 86400e9)),
    ("@d:<1w", Compare(attr("d"), "<", 604800e9)),
    ("@d:<3sec", Compare(attr("d"), "<", "3sec")),
    ("@d:3s", Term(attr("d"), "3s")),
    # ranges
    ("@a:[400 TO 499]", Range(attr("a"), 400.0, 499.0, True, True)),
    ("@a:{200 TO 299}", Range(attr("a"), 200.0, 299.0, False, False)),
    ("@a:[1 TO 10}", Range(attr("a"), 1.0, 10.0, True, False)),
    ("@a:{1 TO 10]", Range(attr("a"), 1.0, 10.0, False, True)),
    ("@a:[50 TO *]", Range(attr("a"), 50.0, None, True, True)),
    ("@a:[* TO 50]", Range(attr("a"), None, 50.0, True, True)),
    ("@a:[a TO z]", Range(attr("a"), "a", "z", True, True)),
    ("foo:[ba* TO b*z]", Range(tag("foo"), "ba*", "b*z", True, True)),
    ("@a:[\\* TO z]", Range(attr("a"), "*", "z", True, True)),
    ('@a:["a b" TO "*"]', Range(attr("a"), "a b", "*", True, True)),
    ("@a:[  1\nTO\t2  ]", Range(attr("a"), 1.0, 2.0, True, True)),
    ("@a:[-1.5e2 TO 0]", Range(attr("a"), -150.0, 0.0, True, True)),
    ("@view.loading_time:[1s TO 3s]", Range(attr("view.loading_time"), 1e9, 3e9, True, True)),
    ("@a:[x\\]y TO z]", Range(attr("a"), "x]y", "z", True, True)),
    # groups and distribution of the field
    ("@a:(x OR y)", Or((Term(attr("a"), "x"), Term(attr("a"), "y")))),
    ("@a:(x y)", And((Term(attr("a"), "x"), Term(attr("a"), "y")))),
    ("env:(prod OR test)", Or((Term(tag("env"), "prod"), Term(tag("env"), "test")))),
    (
        '@a:(x* OR "p q" OR >5 OR [1 TO 2] OR *)',
        Or(
            (
                Wildcard(attr("a"), "x*"),
                Term(attr("a"), "p q"),
                Compare(attr("a"), ">", 5.0),
                Range(attr("a"), 1.0, 2.0, True, True),
                Exists(attr("a")),
            )
        ),
    ),
    ("@a:(x -y)", And((Term(attr("a"), "x"), Not(Term(attr("a"), "y"))))),
    ("@a:(x (y OR z))", And((Term(attr("a"), "x"), Or((Term(attr("a"), "y"), Term(attr("a"), "z")))))),
    ("@a:(x @b:y)", And((Term(attr("a"), "x"), Term(attr("b"), "y")))),
    (
        "NOT (@a:true AND @b:x)",
        Not(And((Term(attr("a"), "true"), Term(attr("b"), "x")))),
    ),
    ("-(a b)", Not(And((A, B)))),
    ("-@a:(x OR y)", Not(Or((Term(attr("a"), "x"), Term(attr("a"), "y"))))),
    (
        "(env:prod AND -version:beta)",
        And((Term(tag("env"), "prod"), Not(Term(tag("version"), "beta")))),
    ),
    ("((a))", A),
    ("(a)AND(b)", And((A, B))),
    # modifiers and newlines
    ("-a", Not(A)),
    ("- a", Not(A)),
    ("NOT a", Not(A)),
    ("+a", A),
    ("a\nAND\nb", And((A, B))),
    ("a\r\n\tb", And((A, B))),
    (
        "-foo:bar baz:qux NOT quux:quuz",
        And((Not(Term(tag("foo"), "bar")), Term(tag("baz"), "qux"), Not(Term(tag("quux"), "quuz")))),
    ),
    ("- foo:bar", Not(Term(tag("foo"), "bar"))),
]


@pytest.mark.parametrize(("query", "expected"), TREES, ids=[q for q, _ in TREES])
def test_parse_tree(query: str, expected: Filter) -> None:
    assert parse_search(query) == expected


# --- precedence: Lucene MUST/SHOULD/MUST_NOT with default operator AND ------------------------------------

PRECEDENCE: list[tuple[str, Filter]] = [
    ("a b", And((A, B))),
    ("a AND b", And((A, B))),
    ("a OR b", Or((A, B))),
    ("a OR b OR c", Or((A, B, C))),
    ("a b c", And((A, B, C))),
    ("a OR b AND c", And((B, C))),
    ("a OR b c", C),
    ("a AND b OR c", A),
    ("(a OR b) c", And((Or((A, B)), C))),
    ("a (b OR c)", And((A, Or((B, C))))),
    ("a AND (b OR c)", And((A, Or((B, C))))),
    ("-a OR -b", And((Not(A), Not(B)))),
    ("-a -b", And((Not(A), Not(B)))),
    ("a OR -b", And((A, Not(B)))),
    ("a OR NOT b", And((A, Not(B)))),
    ("-a b OR c", And((Not(A), Or((B, C))))),
    ("+a OR b", Or((A, B))),
    ("a OR +b", Or((A, B))),
    ("a AND NOT b", And((A, Not(B)))),
    ("a NOT b", And((A, Not(B)))),
    (
        "foo:bar baz:qux quux:quuz",
        And((Term(tag("foo"), "bar"), Term(tag("baz"), "qux"), Term(tag("quux"), "quuz"))),
    ),
    ("foo:bar OR baz:qux AND quux:quuz", And((Term(tag("baz"), "qux"), Term(tag("quux"), "quuz")))),
    ("foo:bar OR baz:qux quux:quuz", Term(tag("quux"), "quuz")),
    (
        "foo:bar (baz:qux quux:quuz)",
        And((Term(tag("foo"), "bar"), And((Term(tag("baz"), "qux"), Term(tag("quux"), "quuz"))))),
    ),
    ("* OR a", MatchAll()),
    ("-* OR a", MatchNone()),
]


@pytest.mark.parametrize(("query", "expected"), PRECEDENCE, ids=[q for q, _ in PRECEDENCE])
def test_precedence(query: str, expected: Filter) -> None:
    assert parse_search(query) == expected


# --- test vectors of the reference (sections 3.1-3.3), through the matcher ---------------------------------

# (query, event, should match)
VECTORS: list[tuple[str, dict[str, Any], bool]] = [
    # 3.3
    ("_exists_:@b", event({"b": "foo"}), True),
    ("_exists_:@b", event({"a": "foo"}), False),
    ("_exists_:@b", event({"b": None}), True),
    ("_missing_:@b", event({"a": "foo"}), True),
    ("_missing_:@b", event({"b": "foo"}), False),
    ("-@a:bla", event({}), True),
    ("-@a:bla", event({"a": "bla"}), False),
    ("@a:va\\/lue", event({"a": "va/lue"}), True),
    ("@a:va\\ lue", event({"a": "va lue"}), True),
    ("@a:va\\ lue", event({"a": "vaXlue"}), False),
    ("@a:va\\*lue", event({"a": "va*lue"}), True),
    ("@a:va\\*lue", event({"a": "vaXlue"}), False),
    ("@a:va\\*lu*", event({"a": "va*lue"}), True),
    ("@a:va\\*lu*", event({"a": "vaXlue"}), False),
    ("*bla", event({"a": "foobla"}), True),
    ("*bla", event({"a": "blafoo"}), False),
    ("@c:*b*la*", event({"c": "foobla"}), True),
    ("@c:*b*la*", event({"c": "foo"}), False),
    ("@b:[1 TO 10]", event({"b": 5}), True),
    ("@b:[1 TO 10]", event({"b": 10}), True),
    ("@b:[1 TO 10]", event({"b": 11}), False),
    ("@f:{1 TO 100}", event({"f": 50}), True),
    ("@f:{1 TO 100}", event({"f": 1}), False),
    ("@f:{1 TO 100}", event({"f": 100}), False),
    ("@b:[a TO z]", event({"b": "c"}), True),
    ("@b:[a TO z]", event({"b": "zz"}), False),
    ("@field:(value1 OR value2)", event({"field": "value1"}), True),
    ("@field:(value1 OR value2)", event({"field": "value2"}), True),
    ("@field:(value1 OR value2)", event({"field": "value3"}), False),
    ("-@field:value1 OR -@field:value2", event({"field": "value"}), True),
    ("-@field:value1 OR -@field:value2", event({"field": "value2"}), False),
    ("@field:value @field2:value2", event({"field": "value", "field2": "value2"}), True),
    ("@field:value @field2:value2", event({"field": "value", "field2": "x"}), False),
    ("@a.b:x", event({"a": {"b": "x"}}), True),
    # Sextant flattens attributes, so a literal dotted key is the same path (Vector would not match).
    ("@a.b:x", event({"a.b": "x"}), True),
    # 3.2 attributes, case, free text
    ("@url:www.datadoghq.com", event({"url": "www.datadoghq.com"}), True),
    ("@http.url_details.path:/home", event({"http": {"url_details": {"path": "/home"}}}), True),
    ("@customer.tier:premium", event({"customer": {"tier": "premium"}}), True),
    ("@a:Foo", event({"a": "foo"}), False),
    ("@a:foo", event({"a": "foo"}), True),
    ("hello", event({"message": "Hello beautiful World"}), True),
    ("hello world", event({"message": "Hello beautiful World"}), True),
    ('"hello world"', event({"message": "Hello beautiful World"}), False),
    ('"hello world"', event({"message": "say hello world!"}), True),
    ("hello", event({"message": "othello"}), False),
    ("hello", event({"n": 5}), False),
    ("checkout", event(event_name="checkout"), True),
    ("*bla", event({"tags": ["x", "fooBLA"]}), True),
    ("@type:server", event(type="server"), True),
    ("@type:server", event(type="view"), False),
    ("@application.id:Shopist", event(application_id="Shopist"), True),
    ("@usr.id:*", event(usr_id="u1"), True),
    ("@usr.id:*", event(session_id="s1"), False),
    ("-@usr.id:u1", event(session_id="s1"), True),
    # reserved attributes and tags read the attribute of that name
    ("service:web", event({"service": "web"}), True),
    ("env:(prod OR test)", event({"env": "test"}), True),
    ("env:(prod OR test)", event({"env": "dev"}), False),
    ("(env:prod AND -version:beta)", event({"env": "prod", "version": "ga"}), True),
    ("(env:prod AND -version:beta)", event({"env": "prod", "version": "beta"}), False),
    ("NOT (@field:true AND @field2:value2)", event({"field": True, "field2": "value2"}), False),
    ("NOT (@field:true AND @field2:value2)", event({"field": True, "field2": "other"}), True),
    # wildcards
    ("@a:web*", event({"a": "webshop"}), True),
    ("@a:*web", event({"a": "myweb"}), True),
    ("@a:*web", event({"a": "webshop"}), False),
    ("@my_attribute:hello?world", event({"my_attribute": "hello world"}), True),
    ("@my_attribute:hello?world", event({"my_attribute": "hello?world"}), True),
    ("@my_attribute:hello?world", event({"my_attribute": "helloworld"}), False),
    ('"*test*"', event({"m": "a *test* b"}), True),
    ('"*test*"', event({"m": "a mytests b"}), False),
    ('@a:"*test*"', event({"a": "*test*"}), True),
    ('@a:"*test*"', event({"a": "xtestx"}), False),
    ("@url:*user\\=JaneDoe*", event({"url": "/p?user=JaneDoe&x=1"}), True),
    ("@http.url:https:\\/\\/*", event({"http": {"url": "https://x.io"}}), True),
    ("@http.url:https:\\/\\/*", event({"http": {"url": "http://x.io"}}), False),
    ("@user.first\\ name:myvalue", event({"user": {"first name": "myvalue"}}), True),
    ('@my_attribute:"hello:world"', event({"my_attribute": "hello:world"}), True),
    # existence
    ("-@http.status_code:*", event({}), True),
    ("-@http.status_code:*", event({"http": {"status_code": 200}}), False),
    ("@a:*", event({"a": None}), True),
    # numbers and booleans
    ("@a:200", event({"a": 200}), True),
    ("@a:200", event({"a": "200"}), True),
    ("@a:200", event({"a": 201}), False),
    ("@a:0.75", event({"a": 0.75}), True),
    ("@a:true", event({"a": True}), True),
    ("@a:true", event({"a": False}), False),
    ("@http.response_time:>100", event({"http": {"response_time": 150}}), True),
    ("@http.response_time:>100", event({"http": {"response_time": 100}}), False),
    ("@session.error.count:>5", event({"session": {"error": {"count": 6}}}), True),
    ("@a:[400 TO 499]", event({"a": 404}), True),
    ("@a:[400 TO 499]", event({"a": 500}), False),
    ("@a:{200 TO 299}", event({"a": 200}), False),
    ("@a:{200 TO 299}", event({"a": 250}), True),
    ("@a:[50 TO *]", event({"a": 1e9}), True),
    ("@a:[* TO 50]", event({"a": -3}), True),
    ("@a:[* TO 50]", event({"a": 51}), False),
    ("@view.loading_time:[1s TO 3s]", event({"view": {"loading_time": 2_000_000_000}}), True),
    ("@view.loading_time:[1s TO 3s]", event({"view": {"loading_time": 4_000_000_000}}), False),
    ("duration:>20ms", event({"duration": 25_000_000}), True),
    ("@b:[1 TO 100]", event({"b": "10"}), True),
    ("@b:[1 TO 100]", event({"b": "2"}), False),
    ("@a:>=bar", event({"a": "baz"}), True),
    ("@a:>=bar", event({"a": "bap"}), False),
    ("@a:<4.12345E-4", event({"a": 0.0001}), True),
    # arrays: any element
    ("users.names:Peter", event({"users": {"names": ["Ann", "Peter"]}}), True),
    ("users.names:Paul", event({"users": {"names": ["Ann", "Peter"]}}), False),
    (
        "@Event.EventData.Data.Name:ObjectServer",
        event({"Event": {"EventData": {"Data": [{"Name": "Other"}, {"Name": "ObjectServer"}]}}}),
        True,
    ),
    ("@items.sku:b", event({"items": [{"sku": "a"}, {"sku": "b"}]}), True),
    ("@items.qty:>2", event({"items": [{"qty": 1}, {"qty": 3}]}), True),
    ("@items.qty:>5", event({"items": [{"qty": 1}, {"qty": 3}]}), False),
    # match all / none, curly quotes, newlines
    ("", event({}), True),
    ("*", event({}), True),
    ("NOT *", event({}), False),
    ("\u201chello world\u201d", event({"m": "hello world"}), True),
    ("@a:x\nAND\n@b:y", event({"a": "x", "b": "y"}), True),
    # precedence, end to end
    ("@a:1 OR @b:1 @c:1", event({"a": "1", "c": "1"}), True),
    ("@a:1 OR @b:1 @c:1", event({"a": "1"}), False),
]


@pytest.mark.parametrize(
    ("query", "ev", "expected"), VECTORS, ids=[f"{q}-{i}" for i, (q, _, _) in enumerate(VECTORS)]
)
def test_vector(query: str, ev: dict[str, Any], expected: bool) -> None:
    assert matches(parse_search(query), ev) is expected


# --- errors ----------------------------------------------------------------------------------------------

# (query, position, expected)
ERRORS: list[tuple[str, int, str]] = [
    ("@a:", 3, "a value after ':'"),
    ("@a: x", 3, "a value after ':'"),
    ("(@a:)", 4, "a value after ':'"),
    ("a AND", 5, "a search term after 'AND'"),
    ("a OR ", 5, "a search term after 'OR'"),
    ("a AND OR b", 6, "a search term after 'AND'"),
    ("(a AND)", 6, "a search term after 'AND'"),
    ("AND a", 0, "a search term before 'AND'"),
    ("(OR a)", 1, "a search term before 'OR'"),
    ("NOT", 3, "a search term after 'NOT'"),
    ("a -", 3, "a search term after '-'"),
    ("+", 1, "a search term after '+'"),
    ("NOT -a", 4, "a search term after 'NOT'"),
    ("--a", 1, "a search term after '-'"),
    ("(a", 2, "')' to close the '(' at position 0"),
    ("a (b (c)", 8, "')' to close the '(' at position 2"),
    ("a)", 1, "the end of the query or a '(' before this ')'"),
    (")", 0, "the end of the query or a '(' before this ')'"),
    ("()", 1, "a search term"),
    ("@a:()", 4, "a search term"),
    ('"abc', 4, "a closing '\"' for the quote at position 0"),
    ('@a:"abc\\"', 9, "a closing '\"' for the quote at position 3"),
    ("@a:[1 TO]", 8, "a range bound after 'TO'"),
    ("@a:[1 TO 2", 10, "']' or '}' to close the range at position 3"),
    ("@a:[1 TO 2 3]", 11, "']' or '}' to close the range at position 3"),
    ("@a:[1 2]", 6, "'TO' in the range at position 3"),
    ("@a:[1 to 2]", 6, "'TO' in the range at position 3"),
    ("@a:[ TO 5]", 8, "'TO' in the range at position 3"),
    ("@a:[]", 4, "a range bound after '['"),
    ("@a:{", 4, "a range bound after '{'"),
    ("[1 TO 2]", 0, "a field before the range, as in @duration:[1 TO 10]"),
    (">5", 0, "a field before '>', as in @duration:>100"),
    ("@a:>", 4, "a number or text after '>'"),
    ("@a:<=", 5, "a number or text after '<='"),
    ("@a:>1e999", 4, "a number of a representable size"),
    (":", 0, "a field name before ':'"),
    (":x", 0, "a field name before ':'"),
    ("a :x", 2, "a field name before ':'"),
    ("@:x", 1, "an attribute name after '@'"),
    ("@a..b:x", 1, "a field name without empty segments (like 'a..b' or 'a.')"),
    ("a.:x", 0, "a field name without empty segments (like 'a..b' or 'a.')"),
    ("service*:app", 7, "a field name without '*' (escape it with '\\')"),
    ("*x:app", 0, "a field name without '*' (escape it with '\\')"),
    ("@a>b:x", 2, "a field name without '>' (escape it with '\\')"),
    ("@foo", 4, "':' and a value after '@foo'"),
    ("a \\", 3, "a character after '\\'"),
    ('""', 0, "text between the quotes"),
    ('_exists_:"a"', 9, "a field name after '_exists_:'"),
    ("_missing_:(a)", 10, "a field name after '_missing_:'"),
    ("_exists_:@", 10, "an attribute name after '@'"),
]


@pytest.mark.parametrize(("query", "position", "expected"), ERRORS, ids=[q for q, _, _ in ERRORS])
def test_error(query: str, position: int, expected: str) -> None:
    with pytest.raises(SearchSyntaxError) as info:
        parse_search(query)
    assert (info.value.position, info.value.expected) == (position, expected)
    assert str(info.value) == f"invalid search query at position {position}: expected {expected}"


def test_error_is_a_value_error_and_pickles() -> None:
    with pytest.raises(ValueError, match="at position 3: expected a value after ':'"):
        parse_search("@a:")
    err = SearchSyntaxError(12, "a value after ':'")
    assert str(err) == "invalid search query at position 12: expected a value after ':'"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.position, copy.expected, str(copy)) == (12, "a value after ':'", str(err))


def test_nesting_is_bounded() -> None:
    deepest = "(" * MAX_NESTING_DEPTH + "a" + ")" * MAX_NESTING_DEPTH
    assert parse_search(deepest) == A
    assert parse_search("@f:" + deepest) == Term(attr("f"), "a")
    with pytest.raises(SearchSyntaxError) as info:
        parse_search("(" + deepest + ")")
    assert info.value.position == MAX_NESTING_DEPTH
    assert info.value.expected == f"at most {MAX_NESTING_DEPTH} levels of nested parentheses"
    # Far deeper than the stack: still a syntax error, never a RecursionError.
    with pytest.raises(SearchSyntaxError):
        parse_search("-(" * 5000 + "a" + ")" * 5000)
    with pytest.raises(SearchSyntaxError):
        parse_search("@a:(" * 5000)


def test_length_is_bounded() -> None:
    longest = " ".join(["ab"] * (MAX_QUERY_LENGTH // 3)).ljust(MAX_QUERY_LENGTH, "x")
    assert len(longest) == MAX_QUERY_LENGTH
    assert isinstance(parse_search(longest), And)
    with pytest.raises(SearchSyntaxError) as info:
        parse_search(longest + "x")
    assert info.value.position == MAX_QUERY_LENGTH
    assert info.value.expected == f"a query of at most {MAX_QUERY_LENGTH} characters"


# --- properties ------------------------------------------------------------------------------------------

SAMPLE_EVENTS = [
    event({}),
    event(
        {"a": "x", "b": 5, "c": [1, "two", None, True], "d": {"e": 2.5}, "m": "Hello big World"},
        event_name="checkout",
        usr_id="u1",
    ),
]


def _check_tree(f: Filter, depth: int = 0) -> None:
    """The parser only builds well-formed trees: known nodes, And/Or with two or more operands."""
    assert depth < 4 * MAX_NESTING_DEPTH
    if isinstance(f, And | Or):
        assert len(f.operands) >= 2
        for o in f.operands:
            _check_tree(o, depth + 1)
    elif isinstance(f, Not):
        _check_tree(f.operand, depth + 1)
    else:
        assert isinstance(f, MatchAll | MatchNone | Term | Wildcard | Exists | Compare | Range)


def _parses_or_rejects(query: str) -> None:
    try:
        result = parse_search(query)
    except SearchSyntaxError as err:
        assert 0 <= err.position <= len(query)
        assert err.expected
        return
    _check_tree(result)
    for ev in SAMPLE_EVENTS:
        matches(result, ev)


SYNTAX_PIECES = st.sampled_from(
    [
        *'@:()[]{}"*?\\-+ ><=.\n\t\u201c\u201d!~',
        "AND",
        "OR",
        "NOT",
        "TO",
        " AND ",
        " OR ",
        " TO ",
        "a",
        "b1",
        "_exists_",
        "_missing_",
        "1",
        "5s",
        "-2.5e3",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_syntax_error(query: str) -> None:
    _parses_or_rejects(query)


@settings(max_examples=300, deadline=None)
@given(st.lists(SYNTAX_PIECES, max_size=30).map("".join))
def test_syntax_soup_parses_or_raises_syntax_error(query: str) -> None:
    _parses_or_rejects(query)


WORD = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True)
PATH = st.from_regex(r"[a-z][a-z0-9_]{0,4}(\.[a-z][a-z0-9_]{0,4}){0,2}", fullmatch=True)
NUMBER = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
)
UNIT = st.sampled_from(["", "", "ns", "us", "ms", "s", "m", "h", "d", "w"])


def _escape_phrase(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


PHRASE = st.text(max_size=8).map(lambda t: '"' + _escape_phrase(t) + '"')
FREE_PHRASE = st.text(min_size=1, max_size=8).map(lambda t: '"' + _escape_phrase(t) + '"')  # "" needs a field
WILDCARD = st.tuples(
    WORD, st.sampled_from(["*", "?", "\\*", "\\ ", "\\:"]), st.sampled_from(["", "x", "*"])
).map("".join)
COMPARISON = st.tuples(
    st.sampled_from([">", ">=", "<", "<="]), st.one_of(st.tuples(NUMBER, UNIT).map("".join), WORD)
).map("".join)
BOUND = st.one_of(st.just("*"), NUMBER, st.tuples(NUMBER, UNIT).map("".join), WORD)
RANGE = st.tuples(
    st.sampled_from("[{"), BOUND, st.sampled_from([" TO ", "  TO\n"]), BOUND, st.sampled_from("]}")
).map("".join)
FREE_VALUE = st.one_of(WORD, FREE_PHRASE, WILDCARD, st.just("*"))
FIELD_VALUE = st.one_of(FREE_VALUE, PHRASE, COMPARISON, RANGE)
FIELD = st.one_of(PATH.map(lambda p: "@" + p), PATH)
MODIFIER = st.sampled_from(["", "", "-", "- ", "NOT ", "+"])
SEPARATOR = st.sampled_from([" ", " AND ", " OR ", "\n", "  ", " AND\n"])


@st.composite
def joined(draw: st.DrawFn, clauses: st.SearchStrategy[str]) -> str:
    items = draw(st.lists(clauses, min_size=1, max_size=4))
    out = items[0]
    for item in items[1:]:
        out += draw(SEPARATOR) + item
    return out


def _with_modifier(clause: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(MODIFIER, clause).map("".join)


FIELD_GROUP = st.tuples(FIELD, joined(_with_modifier(FIELD_VALUE))).map(lambda p: f"{p[0]}:({p[1]})")
LEAF = st.one_of(
    FREE_VALUE,
    st.tuples(FIELD, FIELD_VALUE).map(":".join),
    FIELD.map(lambda f: f"_exists_:{f}"),
    FIELD.map(lambda f: f"_missing_:{f}"),
    FIELD_GROUP,
    st.just("*:*"),
)
VALID_QUERY = st.recursive(
    joined(_with_modifier(LEAF)),
    lambda inner: joined(_with_modifier(st.one_of(LEAF, inner.map(lambda q: f"({q})")))),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(VALID_QUERY)
def test_generated_valid_queries_parse(query: str) -> None:
    result = parse_search(query)
    _check_tree(result)
    for ev in SAMPLE_EVENTS:
        assert isinstance(matches(result, ev), bool)


@settings(max_examples=100, deadline=None)
@given(st.tuples(FIELD, FIELD_VALUE, FIELD_VALUE))
def test_field_distributes_over_group(parts: tuple[str, str, str]) -> None:
    field, x, y = parts
    assert parse_search(f"{field}:({x} OR {y})") == parse_search(f"{field}:{x} OR {field}:{y}")
    assert parse_search(f"{field}:({x} {y})") == parse_search(f"{field}:{x} {field}:{y}")


@settings(max_examples=100, deadline=None)
@given(VALID_QUERY)
def test_negation_inverts_matching(query: str) -> None:
    positive = parse_search(f"({query})")
    negative = parse_search(f"-({query})")
    for ev in SAMPLE_EVENTS:
        assert matches(negative, ev) is not matches(positive, ev)
