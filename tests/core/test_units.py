"""The unit catalog (Datadog's list, in Datadog's order) and the reading of stored unit strings onto it."""

from __future__ import annotations

import pytest

from sextant.core.units import (
    BY_NAME,
    UNITS,
    MetricUnit,
    close_names,
    parse_metric_unit,
    resolve_unit,
    unit_named,
)

# docs.datadoghq.com/metrics/units: family → its units and the abbreviations the page gives them.
DOCUMENTED = {
    "bytes": "bit byte kibibyte:KiB mebibyte:MiB gibibyte:GiB tebibyte:TiB pebibyte:PiB exbibyte:EiB",
    "time": "nanosecond:ns microsecond:μs millisecond:ms second:s minute:min hour:hr day week:wk",
    "percentage": "percent_nano:n% percent:% apdex fraction",
    "network": "connection:conn request:req packet:pkt segment:seg response:rsp message:msg payload timeout "
    "datagram route session hop",
    "system": "process:proc thread host node fault service:svc instance cpu",
    "disk": "file inode sector block:blk",
    "general": "buffer error:err read:rd write:wr occurrence event time unit operation:op item task worker "
    "resource:res garbage_collection:gc email sample:smpl stage monitor location check attempt device:dev "
    "update:up method:mthd job container execution throttle invocation user success build prediction "
    "exception",
    "db": "table index:idx lock transaction:tx query row key command:cmd offset record object cursor "
    "assertion:assert scan document shard flush merge refresh fetch column:col commit wait ticket question",
    "cache": "hit miss eviction get set",
    "money": "dollar:$ cent:¢ microdollar:μ$ euro:€ pound:£ penny:p yen:¥",
    "memory": "page:pg split",
    "frequency": "hertz:Hz kilohertz:kHz megahertz:MHz gigahertz:GHz",
    "logging": "entry",
    "temperature": "decidegree_celsius:d°C degree_celsius:°C degree_fahrenheit:°F",
    "cpu": "nanocore:ncores microcore:μcores millicore:mcores core kilocore:Kcores megacore:Mcores "
    "gigacore:Gcores teracore:Tcores petacore:Pcores exacore:Ecores",
    "power": "nanowatt:nW microwatt:μW milliwatt:mW deciwatt:dW watt kilowatt megawatt gigawatt terawatt",
    "current": "milliampere:mA ampere:A",
    "potential": "millivolt:mV volt:V",
    "apm": "span",
    "synthetics": "run step",
}


def test_every_documented_unit_is_in_its_family_with_its_abbreviation() -> None:
    for family, units in DOCUMENTED.items():
        for entry in units.split():
            name, _, short = entry.partition(":")
            unit = BY_NAME[name.replace("_", " ") if name != "percent_nano" else name]
            assert unit.family == family, unit
            if short:
                assert unit.short_name == short, unit


def test_the_catalog_is_in_datadogs_order_which_numbers_it() -> None:
    assert len(BY_NAME) == len(UNITS)  # names are unique
    position = {u.name: i for i, u in enumerate(UNITS, start=1)}
    # The recorded answers number percent 17; the list begins with the bytes and the times.
    assert position["percent"] == 17
    assert [u.name for u in UNITS[:8]] == [
        "bit", "byte", "kibibyte", "mebibyte", "gibibyte", "tebibyte", "pebibyte", "exbibyte",
    ]  # fmt: skip
    assert position["nanosecond"] > position["week"]  # added later, numbered after


def test_scale_factors_convert_within_a_family() -> None:
    def size(name: str) -> float:
        return BY_NAME[name].scale_factor

    assert size("kibibyte") / size("byte") == 1024
    assert size("byte") / size("bit") == 8
    assert size("hour") / size("minute") == 60
    assert size("week") / size("day") == 7
    assert size("millisecond") * 1000 == size("second")
    assert size("fraction") / size("percent") == 100
    assert size("cent") * 100 == size("dollar")
    assert size("gigahertz") / size("megahertz") == pytest.approx(1000)
    assert size("kilowatt") / size("watt") == 1000
    assert all(u.scale_factor > 0 for u in UNITS)


@pytest.mark.parametrize(
    ("text", "unit", "per"),
    [
        ("byte", "byte", None),
        ("bytes", "byte", None),
        ("Bytes", "byte", None),
        ("garbage collection", "garbage collection", None),
        ("queries", "query", None),
        # OTLP's UCUM codes
        ("ms", "millisecond", None),
        ("us", "microsecond", None),
        ("s", "second", None),
        ("min", "minute", None),
        ("h", "hour", None),
        ("By", "byte", None),
        ("KiBy", "kibibyte", None),
        ("kBy", "kilobyte", None),
        ("Mbit", "megabit", None),
        ("%", "percent", None),
        ("Cel", "degree celsius", None),
        ("Hz", "hertz", None),
        ("{request}", "request", None),
        ("{packets}", "packet", None),
        ("By/s", "byte", "second"),
        ("{request}/s", "request", "second"),
        ("KiBy/min", "kibibyte", "minute"),
        # Datadog's abbreviations
        ("KiB", "kibibyte", None),
        ("req", "request", None),
    ],
)
def test_stored_units_read_onto_the_catalog(text: str, unit: str, per: str | None) -> None:
    assert parse_metric_unit(text) == MetricUnit(BY_NAME[unit], None if per is None else BY_NAME[per])


@pytest.mark.parametrize("text", [None, "", "  ", "1", "{}", "furlong", "{widget}", "By/{batch}", "1/s"])
def test_what_the_catalog_cannot_name_is_no_unit(text: str | None) -> None:
    assert parse_metric_unit(text) is None


def test_an_explicit_per_unit_wins_and_names_are_exact() -> None:
    assert parse_metric_unit("byte", "second") == MetricUnit(BY_NAME["byte"], BY_NAME["second"])
    assert parse_metric_unit("By/s", "minute") == MetricUnit(BY_NAME["byte"], BY_NAME["minute"])
    assert unit_named("byte") is BY_NAME["byte"]
    assert unit_named("bytes") is None and unit_named("ms") is None
    assert resolve_unit("MS") is BY_NAME["millisecond"]


def test_per_time_and_times_seconds() -> None:
    byte, second, minute = BY_NAME["byte"], BY_NAME["second"], BY_NAME["minute"]
    assert MetricUnit(byte).per_time(second) == MetricUnit(byte, second)
    assert MetricUnit(byte, minute).per_time(second) is None
    assert MetricUnit(byte, second).times_seconds() == MetricUnit(byte)
    assert MetricUnit(byte, minute).times_seconds() is None
    assert MetricUnit(byte).times_seconds() is None


def test_suggestions_for_names_that_are_not_units() -> None:
    assert close_names("ms") == ["millisecond"]
    assert close_names("kilobytes") == ["kilobyte"]
    assert close_names("bytez") == ["byte"]
    assert close_names("zzzz") == []
