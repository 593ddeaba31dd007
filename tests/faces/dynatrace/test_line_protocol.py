"""The metric ingestion protocol parser, on the examples of Dynatrace's documentation and beyond."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sextant.faces.dynatrace.line_protocol import (
    MAX_DIMENSION_VALUE_CHARS,
    MAX_DIMENSIONS,
    MAX_LINE_CHARS,
    DataLine,
    Delta,
    Gauge,
    LineError,
    MetadataLine,
    Summary,
    check_timestamp,
    parse_line,
    parse_payload,
)

NOW = 1_800_000_000_000

# --- the documentation's own examples ---------------------------------------------------------------------

DOC_EXAMPLES: list[tuple[str, DataLine | MetadataLine]] = [
    (
        "cpu.temperature,dt.entity.host=HOST-06F288EE2A930951,cpu=1 55",
        DataLine(
            "cpu.temperature", (("dt.entity.host", "HOST-06F288EE2A930951"), ("cpu", "1")), Gauge(55), None
        ),
    ),
    (
        'workHours,team="devops\\\\bugfixing",project="\\"product\\"_improvement" 1000',
        DataLine(
            "workHours",
            (("team", "devops\\bugfixing"), ("project", '"product"_improvement')),
            Gauge(1000),
            None,
        ),
    ),
    (
        "mymetric,team=teamA,businessapp=hr 1000",
        DataLine("mymetric", (("team", "teamA"), ("businessapp", "hr")), Gauge(1000), None),
    ),
    (
        "mymetric,team=teamA,businessapp=hr 1000 1609459200000",
        DataLine("mymetric", (("team", "teamA"), ("businessapp", "hr")), Gauge(1000), 1609459200000),
    ),
    (
        "cpu.temperature,hostname=hostA,cpu=1 55",
        DataLine("cpu.temperature", (("hostname", "hostA"), ("cpu", "1")), Gauge(55), None),
    ),
    (
        "cpu.temperature,hostname=hostA,cpu=1 gauge,45",
        DataLine("cpu.temperature", (("hostname", "hostA"), ("cpu", "1")), Gauge(45), None),
    ),
    (
        "cpu.temperature,hostname=hostA,cpu=1 gauge,min=17.1,max=17.3,sum=34.4,count=2",
        DataLine(
            "cpu.temperature", (("hostname", "hostA"), ("cpu", "1")), Summary(17.1, 17.3, 34.4, 2), None
        ),
    ),
    (
        "cpu.temperature,dt.entity.host=HOST-4587AE40F95AD90D,cpu=1 gauge,min=17.1,max=17.3,sum=34.4,count=2",
        DataLine(
            "cpu.temperature",
            (("dt.entity.host", "HOST-4587AE40F95AD90D"), ("cpu", "1")),
            Summary(17.1, 17.3, 34.4, 2),
            None,
        ),
    ),
    (
        "new_user_count,region=EAST count,delta=50",
        DataLine("new_user_count", (("region", "EAST"),), Delta(50), None),
    ),
    (
        "new_user_count,region=WEST count,delta=150",
        DataLine("new_user_count", (("region", "WEST"),), Delta(150), None),
    ),
    (
        'cpu.temp,cpu=cpu1,cpu_type="INTEL" 55',
        DataLine("cpu.temp", (("cpu", "cpu1"), ("cpu_type", "INTEL")), Gauge(55), None),
    ),
    (
        '#cpu.temperature gauge dt.meta.unit=count,dt.meta.description="The temperature of the CPU",'
        'dt.meta.displayname="CPU temperature"',
        MetadataLine(
            "cpu.temperature",
            "gauge",
            unit="count",
            display_name="CPU temperature",
            description="The temperature of the CPU",
        ),
    ),
    # The general syntax's form: properties separated by a comma and a space.
    (
        '#metric.key count dt.meta.displayName="Shown", dt.meta.unit="Byte"',
        MetadataLine("metric.key", "count", unit="Byte", display_name="Shown"),
    ),
]


@pytest.mark.parametrize(("line", "expected"), DOC_EXAMPLES, ids=[e[0][:50] for e in DOC_EXAMPLES])
def test_documented_examples(line: str, expected: DataLine | MetadataLine) -> None:
    assert parse_line(line) == expected


# --- what Dynatrace's client libraries send ---------------------------------------------------------------

CLIENT_LINES: list[tuple[str, DataLine | MetadataLine]] = [
    # dynatrace-metric-utils escapes ',', '=', ' ', '"' and '\' in bare values.
    (
        'int-gauge,env_name=prod\\,\\ eu\\=1\\ \\"x\\"\\ \\\\y,dim1=val\\ 1 gauge,23',
        DataLine("int-gauge", (("env_name", 'prod, eu=1 "x" \\y'), ("dim1", "val 1")), Gauge(23), None),
    ),
    ("my.counter count,delta=1.5", DataLine("my.counter", (), Delta(1.5), None)),
    ("my.summary gauge,min=1,max=3,sum=4,count=2", DataLine("my.summary", (), Summary(1, 3, 4, 2), None)),
    # Micrometer's lines.
    (
        "my.counter,dt.metrics.source=micrometer count,delta=12 1800000000000",
        DataLine("my.counter", (("dt.metrics.source", "micrometer"),), Delta(12), 1800000000000),
    ),
    ("#my.timer gauge dt.meta.unit=ms", MetadataLine("my.timer", "gauge", unit="ms")),
    (
        "#my.metric count dt.meta.description=some\\ description,dt.meta.unit=count",
        MetadataLine("my.metric", "count", unit="count", description="some description"),
    ),
    (
        '#jmeter.usermetrics.minactivethreads gauge dt.meta.unit="count",'
        'dt.meta.description="the minimum number of active threads",'
        'dt.meta.displayname="JMeter - min active threads"',
        MetadataLine(
            "jmeter.usermetrics.minactivethreads",
            "gauge",
            unit="count",
            display_name="JMeter - min active threads",
            description="the minimum number of active threads",
        ),
    ),
]


@pytest.mark.parametrize(("line", "expected"), CLIENT_LINES, ids=[e[0][:50] for e in CLIENT_LINES])
def test_client_library_lines(line: str, expected: DataLine | MetadataLine) -> None:
    assert parse_line(line) == expected


# --- valid syntax ------------------------------------------------------------------------------------------

VALID: list[tuple[str, DataLine]] = [
    ("abc 1", DataLine("abc", (), Gauge(1), None)),
    ("abc -1.5", DataLine("abc", (), Gauge(-1.5), None)),
    ("abc +2", DataLine("abc", (), Gauge(2), None)),
    ("abc .5", DataLine("abc", (), Gauge(0.5), None)),
    ("abc 5.", DataLine("abc", (), Gauge(5), None)),
    ("abc 1e3", DataLine("abc", (), Gauge(1000), None)),
    ("abc 1.0E-3", DataLine("abc", (), Gauge(0.001), None)),
    ("abc gauge,0", DataLine("abc", (), Gauge(0), None)),
    ("abc count,delta=-4", DataLine("abc", (), Delta(-4), None)),
    ("abc count,delta=0", DataLine("abc", (), Delta(0), None)),
    # Summary fields in any order; a single measurement.
    ("abc gauge,count=1,sum=2,max=2,min=2", DataLine("abc", (), Summary(2, 2, 2, 1), None)),
    # sum/count just under min, within Dynatrace's tolerance (0.1+0.1+0.1 is 0.30000000000000004).
    ("abc gauge,min=0.1,max=0.1,sum=0.3,count=3", DataLine("abc", (), Summary(0.1, 0.1, 0.3, 3), None)),
    # Several spaces or tabs between the parts; trailing whitespace and CR ignored.
    ("abc  1 \t 1800000000000 \r", DataLine("abc", (), Gauge(1), 1800000000000)),
    ("abc,a=b\t7", DataLine("abc", (("a", "b"),), Gauge(7), None)),
    # Key syntax: underscores first, digits first in later sections, hyphens inside.
    ("_private.metric 1", DataLine("_private.metric", (), Gauge(1), None)),
    ("system.load.average.1m 2.33154", DataLine("system.load.average.1m", (), Gauge(2.33154), None)),
    ("my-app.req-count_total 3", DataLine("my-app.req-count_total", (), Gauge(3), None)),
    ("UPPER.Case 3", DataLine("UPPER.Case", (), Gauge(3), None)),
    # Dimension keys: dots, colons, hyphens, underscores, digits after the first character.
    ("abc,k8s.pod-name:x_1=p 1", DataLine("abc", (("k8s.pod-name:x_1", "p"),), Gauge(1), None)),
    ("abc,_x=1 1", DataLine("abc", (("_x", "1"),), Gauge(1), None)),
    # Values: non-ASCII, '=' and ',' and spaces when quoted, colons and slashes bare.
    ("abc,city=Zürich 1", DataLine("abc", (("city", "Zürich"),), Gauge(1), None)),
    ('abc,q="a=b, c" 1', DataLine("abc", (("q", "a=b, c"),), Gauge(1), None)),
    ("abc,url=http://x/y:8 1", DataLine("abc", (("url", "http://x/y:8"),), Gauge(1), None)),
    ('abc,e="\\,\\n" 1', DataLine("abc", (("e", ",n"),), Gauge(1), None)),
    # A key given twice: the payload is valid and the first value kept.
    ("abc,ip=192.168.100.1,ip=10.0.0.1 1", DataLine("abc", (("ip", "192.168.100.1"),), Gauge(1), None)),
]


@pytest.mark.parametrize(("line", "expected"), VALID, ids=[v[0] for v in VALID])
def test_valid_lines(line: str, expected: DataLine) -> None:
    assert parse_line(line) == expected


def test_blank_lines_and_comments_carry_nothing() -> None:
    for line in ("", "   ", "\t", "\r", "#", "# a comment", "#\tanother", "  \r"):
        assert parse_line(line) is None


# --- invalid lines -----------------------------------------------------------------------------------------

INVALID: list[tuple[str, str]] = [
    # metric keys
    (" abc 1", "the line must start with the metric key"),
    ("1abc 1", "invalid metric key '1abc'"),
    ("-abc 1", "invalid metric key '-abc'"),
    ("abc.-x 1", "invalid metric key 'abc.-x'"),
    ("abc..x 1", "invalid metric key 'abc..x'"),
    ("abc. 1", "invalid metric key 'abc.'"),
    ("äbc 1", "invalid metric key 'äbc'"),
    ("ab:c 1", "invalid metric key 'ab:c'"),
    ("ab 1", "at least 3 characters"),
    ("a" * 251 + " 1", "251 characters long; at most 250"),
    ("dt.custom 1", "the prefix 'dt.' is reserved"),
    ("DT.custom 1", "the prefix 'dt.' is reserved"),
    # dimensions
    ("abc,cacheManager=x 1", "invalid dimension key 'cacheManager'"),
    ("abc,1a=x 1", "invalid dimension key '1a'"),
    ("abc,a..b=x 1", "invalid dimension key 'a..b'"),
    ("abc,a.=x 1", "invalid dimension key 'a.'"),
    ("abc,a.1b=x 1", "invalid dimension key 'a.1b'"),
    ("abc,-a=x 1", "invalid dimension key '-a'"),
    ("abc,=x 1", "empty dimension key"),
    ("abc,a 1", "dimension 'a' has no value: write a=value"),
    ("abc,a,b=c 1", "dimension 'a' has no value"),
    ("abc, 1", "empty dimension after 'abc,': remove the extra comma"),
    ("abc,a=b, 1", "empty dimension after"),
    ("abc,a= 1", "dimension 'a' has an empty value"),
    ('abc,a="" 1', "dimension 'a' has an empty value"),
    ('abc,a="x 1', "the value of dimension 'a' has no closing quote"),
    ('abc,a="x\\" 1', "no closing quote"),
    ('abc,a=x"y 1', "unescaped '\"'"),
    ("abc,a=x=y 1", "unescaped '='"),
    ("abc,a=x\\", "unescaped '\\\\'"),
    ('abc,a="x"y 1', "unexpected 'y' after the value of dimension 'a'"),
    ('abc,a="x\ty" 1', "contains a control character"),
    ("abc,a=x\x01 1", "contains a control character"),
    ("abc,a=b", "missing payload"),
    ("abc,a=" + "v" * (MAX_DIMENSION_VALUE_CHARS + 1) + " 1", "251 characters long; at most 250"),
    ("abc," + "k" * 101 + "=v 1", "101 characters long; at most 100"),
    (
        "abc," + ",".join(f"d{i}=v" for i in range(MAX_DIMENSIONS + 1)) + " 1",
        f"more than {MAX_DIMENSIONS} dimensions",
    ),
    # a value with spaces that is not quoted
    (
        "jvm.memory.max,area=nonheap,id=Compressed Class Space 1073",
        "a dimension value with spaces must be quoted",
    ),
    # payloads
    ("abc", "missing payload"),
    ("abc ", "missing payload"),
    ("abc gauge", "the gauge payload has no value"),
    ("abc count", "the count payload has no value"),
    ("abc count,5", "write count,delta=5"),
    ("abc count,value=5", "unknown count field 'value'"),
    ("abc count,delta=x", "delta 'x' is not a number"),
    ("abc count,delta=", "delta '' is not a number"),
    ("abc counter,5", "invalid payload type 'counter'"),
    ("abc GAUGE,5", "invalid payload type 'GAUGE'"),
    ("abc x", "invalid payload 'x'"),
    ("abc min=1,max=2,sum=3,count=2", "invalid payload type 'min=1'"),
    ("abc gauge,x", "gauge value 'x' is not a number"),
    ("abc gauge,", "gauge value '' is not a number"),
    ("abc nan", "invalid payload 'nan'"),
    ("abc gauge,NaN", "gauge value 'NaN' is not a number"),
    ("abc inf", "invalid payload 'inf'"),
    ("abc 1_000", "invalid payload '1_000'"),
    ("abc 0x10", "invalid payload '0x10'"),
    ("abc 1e999", "out of the range of a double"),
    ("abc gauge,min=1,max=2,sum=3", "missing: count"),
    ("abc gauge,min=1,count=2", "missing: max, sum"),
    ("abc gauge,min=1,max=2,sum=3,count=2,avg=1", "invalid gauge field 'avg=1'"),
    ("abc gauge,min=1,max=2,sum=3,count=2,count=2", "gauge field 'count' is given twice"),
    ("abc gauge,min=1,max=2,sum=3,count", "invalid gauge field 'count'"),
    ("abc gauge,min=1,max=2,sum=3,count=1.5", "count '1.5' is not a whole number"),
    ("abc gauge,min=1,max=2,sum=3,count=-1", "count '-1' is not a whole number"),
    ("abc gauge,min=0,max=0,sum=0,count=0", "count is 0"),
    ("abc gauge,min=a,max=2,sum=3,count=2", "min 'a' is not a number"),
    (
        "abc gauge,min=35.689672,max=35.689672,sum=35.669104,count=1",
        "inconsistent gauge fields: min <= avg <= max doesn't hold: min: 35.689672, max: 35.689672, "
        "sum: 35.669104, count: 1, avg: 35.669104, tolerance: 0.000001",
    ),
    ("abc gauge,min=5,max=1,sum=6,count=2", "inconsistent gauge fields"),
    # timestamps
    ("abc 1 1.6e12", "invalid timestamp '1.6e12'"),
    ("abc 1 -5", "invalid timestamp '-5'"),
    ("abc 1 2021-01-01", "invalid timestamp '2021-01-01'"),
    ("abc 1 1800000000000 extra", "unexpected text 'extra' after the timestamp"),
    # metadata lines
    ("#abc", "a metadata line names the payload format"),
    ("#abc dt.meta.unit=ms", "a metadata line names the payload format"),
    ("#abc histogram dt.meta.unit=ms", "a metadata line names the payload format"),
    ("#abc gauge", "the metadata line has no properties"),
    ("#1abc gauge dt.meta.unit=ms", "invalid metric key '1abc'"),
    ("#abc gauge unit=ms", "unknown metadata property 'unit'"),
    ("#abc gauge dt.meta.color=red", "unknown metadata property 'dt.meta.color'"),
    ("#abc gauge dt.meta.unit", "metadata property 'dt.meta.unit' has no value"),
    ("#abc gauge dt.meta.unit=", "metadata property 'dt.meta.unit' has an empty value"),
    ("#abc gauge dt.meta.description=two words", "quote values that contain spaces"),
    ('#abc gauge dt.meta.unit="ms', "no closing quote"),
    ("#abc gauge dt.meta.unit=" + "u" * 64, "64 characters long; at most 63"),
    ("#abc gauge dt.meta.displayName=" + "d" * 301, "301 characters long; at most 300"),
    # the whole line
    ("abc " + "1" * MAX_LINE_CHARS, f"characters long; at most {MAX_LINE_CHARS} are allowed"),
]


@pytest.mark.parametrize(("line", "message"), INVALID, ids=[i[0][:60] for i in INVALID])
def test_invalid_lines(line: str, message: str) -> None:
    with pytest.raises(LineError) as refused:
        parse_line(line)
    assert message in refused.value.message


def test_refusals_name_the_metric_key_once_it_is_read() -> None:
    with pytest.raises(LineError) as refused:
        parse_line("my.metric,Bad=x 1")
    assert refused.value.identifier == "my.metric"
    with pytest.raises(LineError) as unreadable:
        parse_line("1bad 1")
    assert unreadable.value.identifier == "1bad"
    with pytest.raises(LineError) as no_key:
        parse_line(" 1")
    assert no_key.value.identifier is None


def test_limits_are_inclusive() -> None:
    assert isinstance(parse_line("a" * 250 + " 1"), DataLine)
    assert isinstance(parse_line("abc,k=" + "v" * MAX_DIMENSION_VALUE_CHARS + " 1"), DataLine)
    assert isinstance(parse_line("abc," + "k" * 100 + "=v 1"), DataLine)
    fifty = parse_line("abc," + ",".join(f"d{i}=v" for i in range(MAX_DIMENSIONS)) + " 1")
    assert isinstance(fifty, DataLine) and len(fifty.dimensions) == MAX_DIMENSIONS
    # Only a number's digits can make a valid line this long.
    longest = "abc 0." + "0" * (MAX_LINE_CHARS - 7) + "1"
    assert len(longest) == MAX_LINE_CHARS
    assert isinstance(parse_line(longest), DataLine)


def test_metadata_property_names_are_case_insensitive_and_the_first_wins() -> None:
    line = parse_line("#abc gauge dt.meta.DisplayName=A,dt.meta.displayname=B,dt.meta.UNIT=s")
    assert line == MetadataLine("abc", "gauge", unit="s", display_name="A")


# --- timestamps --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset_ms", "accepted"),
    [
        (0, True),
        (-3_600_000, True),
        (-3_600_001, False),
        (600_000, True),
        (600_001, False),
        (-86_400_000, False),
    ],
)
def test_timestamp_window(offset_ms: int, accepted: bool) -> None:
    reason = check_timestamp(NOW + offset_ms, NOW)
    assert (reason is None) is accepted
    if not accepted:
        assert reason is not None and "UTC milliseconds" in reason and "1 hour ago" in reason


def test_a_timestamp_in_seconds_is_outside_the_window() -> None:
    assert check_timestamp(NOW // 1000, NOW) is not None


# --- payloads of several lines -----------------------------------------------------------------------------


def test_payload_numbers_lines_from_one_counting_blank_lines_and_comments() -> None:
    body = b"a.b 1\n\n# note\nbad\r\n#a.b gauge dt.meta.unit=ms\nc.d count,delta=2\n"
    parsed = list(parse_payload(body))
    assert [n for n, _ in parsed] == [1, 4, 5, 6]
    assert isinstance(parsed[0][1], DataLine)
    assert isinstance(parsed[1][1], LineError)
    assert isinstance(parsed[2][1], MetadataLine)
    assert parsed[3][1] == DataLine("c.d", (), Delta(2), None)


def test_an_undecodable_line_is_refused_alone() -> None:
    body = "a.b,city=Zürich 1\n".encode() + b"c.d,x=\xff\xfe 2\ne.f 3"
    parsed = list(parse_payload(body))
    assert parsed[0] == (1, DataLine("a.b", (("city", "Zürich"),), Gauge(1), None))
    number, error = parsed[1]
    assert number == 2 and isinstance(error, LineError) and "not valid utf-8" in error.message
    assert parsed[2] == (3, DataLine("e.f", (), Gauge(3), None))


def test_latin1_payload_and_utf8_byte_order_mark() -> None:
    assert list(parse_payload("a.b,city=Zürich 1".encode("latin-1"), "latin-1")) == [
        (1, DataLine("a.b", (("city", "Zürich"),), Gauge(1), None))
    ]
    assert list(parse_payload(b"\xef\xbb\xbfa.b 1")) == [(1, DataLine("a.b", (), Gauge(1), None))]


def test_empty_payloads_yield_nothing() -> None:
    for body in (b"", b"\n", b"\n\n  \n", b"# only a comment\n"):
        assert list(parse_payload(body)) == []


# --- anything at all ---------------------------------------------------------------------------------------

_PROTOCOL_CHARS = st.sampled_from([*'abcXYZ019_-.,=" \t\\#:\x00\x01é', "gauge", "count", "delta", "min"])


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_PROTOCOL_CHARS, max_size=40).map("".join)))
def test_any_text_is_a_line_or_a_line_error(text: str) -> None:
    try:
        parse_line(text)
    except LineError as exc:
        assert exc.message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_lines_or_line_errors(body: bytes) -> None:
    for number, parsed in parse_payload(body):
        assert number >= 1
        assert isinstance(parsed, DataLine | MetadataLine | LineError)
