"""Metric units: one catalog of named units (family, plural, short name, scale within the family), and the
reading of the unit strings senders attach to points (catalog names, OTLP's UCUM codes) onto it.

The catalog is Datadog's (docs.datadoghq.com/metrics/units, and the backend's unit list that Datadog's
integration tooling mirrors), in Datadog's own order: a unit's position (from 1) is its Datadog id, which is
how the recorded answers number them (percent is 17). Datadog is the richest unit vocabulary among the
faces, so the others map onto it as well. Decisions where Datadog is silent:

- `scale_factor` is the size of the unit in the family's base unit (byte, second, percent, dollar, hertz,
  watt ...): a kibibyte is 1024, a minute 60, a fraction 100 (a fraction of 1 is 100 %), a degree
  Fahrenheit 5/9 (the size of a degree, not an offset). Currencies other than the dollar's own subunits
  are 1: no exchange rate is implied, and Sextant never converts values between units anyway.
- Short names are Datadog's documented abbreviations; where it documents none, the name itself.
- Plurals follow English (`query` → `queries`); units Datadog writes the same in both (percent, hertz,
  yen, currencies) keep their name.

`parse_metric_unit` reads what intakes store: a catalog name (`byte`), a plural (`bytes`), a UCUM code as
OTLP sends them (`ms`, `By`, `KiBy`, `%`, `Cel`), an annotation naming a unit (`{request}`,
`{packets}`), and a per-unit after a slash (`By/s`, `{request}/s`). `1` (dimensionless) and anything the
catalog cannot name are no unit: a unit is never guessed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    plural: str
    short_name: str
    family: str
    scale_factor: float


@dataclass(frozen=True, slots=True)
class MetricUnit:
    """What a series measures: a unit, and optionally what it is per (bytes per second)."""

    unit: Unit
    per: Unit | None = None

    def per_time(self, time: Unit) -> MetricUnit | None:
        """The rate of this quantity per `time`; None when it already is a rate (a rate of a rate has
        no unit in the catalog)."""
        return None if self.per is not None else MetricUnit(self.unit, time)

    def times_seconds(self) -> MetricUnit | None:
        """This quantity multiplied by seconds: a per-second rate becomes its amount; anything else has
        no catalog unit."""
        return MetricUnit(self.unit) if self.per is not None and self.per.name == "second" else None


# name | plural ("=" the name, "+s" / "+es" a suffix) | short name ("" the name) | family | scale factor
_TABLE = """
bit|+s|b|bytes|0.125
byte|+s|B|bytes|1
kibibyte|+s|KiB|bytes|1024
mebibyte|+s|MiB|bytes|1048576
gibibyte|+s|GiB|bytes|1073741824
tebibyte|+s|TiB|bytes|1099511627776
pebibyte|+s|PiB|bytes|1125899906842624
exbibyte|+s|EiB|bytes|1152921504606846976
microsecond|+s|μs|time|1e-6
millisecond|+s|ms|time|1e-3
second|+s|s|time|1
minute|+s|min|time|60
hour|+s|hr|time|3600
day|+s||time|86400
week|+s|wk|time|604800
fraction|+s||percentage|100
percent|=|%|percentage|1
connection|+s|conn|network|1
request|+s|req|network|1
process|+es|proc|system|1
file|+s||disk|1
buffer|+s||general|1
inode|+s||disk|1
sector|+s||disk|1
block|+s|blk|disk|1
packet|+s|pkt|network|1
segment|+s|seg|network|1
response|+s|rsp|network|1
message|+s|msg|network|1
payload|+s||network|1
core|+s||cpu|1
thread|+s||system|1
table|+s||db|1
index|indices|idx|db|1
lock|+s||db|1
transaction|+s|tx|db|1
query|queries||db|1
row|+s||db|1
hit|+s||cache|1
miss|+es||cache|1
eviction|+s||cache|1
dollar|+s|$|money|1
cent|+s|¢|money|0.01
error|+s|err|general|1
host|+s||system|1
node|+s||system|1
key|+s||db|1
command|+s|cmd|db|1
offset|+s||db|1
page|+s|pg|memory|1
read|+s|rd|general|1
write|+s|wr|general|1
occurrence|+s||general|1
event|+s||general|1
time|+s||general|1
unit|+s||general|1
operation|+s|op|general|1
item|+s||general|1
record|+s||db|1
object|+s||db|1
cursor|+s||db|1
assertion|+s|assert|db|1
fault|+s||system|1
percent_nano|=|n%|percentage|1e-9
get|+s||cache|1
set|+s||cache|1
scan|+s||db|1
nanosecond|+s|ns|time|1e-9
service|+s|svc|system|1
task|+s||general|1
worker|+s||general|1
resource|+s|res|general|1
document|+s||db|1
shard|+s||db|1
flush|+es||db|1
merge|+s||db|1
refresh|+es||db|1
fetch|+es||db|1
garbage collection|+s|gc|general|1
timeout|+s||network|1
hertz|=|Hz|frequency|1
kilohertz|=|kHz|frequency|1e3
megahertz|=|MHz|frequency|1e6
gigahertz|=|GHz|frequency|1e9
email|+s||general|1
datagram|+s||network|1
column|+s|col|db|1
apdex|=||percentage|1
instance|+s||system|1
sample|+s|smpl|general|1
commit|+s||db|1
wait|+s||db|1
ticket|+s||db|1
split|+s||memory|1
stage|+s||general|1
monitor|+s||general|1
location|+s||general|1
check|+s||general|1
question|+s||db|1
route|+s||network|1
session|+s||network|1
entry|entries||logging|1
attempt|+s||general|1
cpu|+s||system|1
device|+s|dev|general|1
update|+s|up|general|1
method|+s|mthd|general|1
job|+s||general|1
container|+s||general|1
execution|+s||general|1
throttle|+s||general|1
invocation|+s||general|1
user|+s||general|1
degree celsius|degrees celsius|°C|temperature|1
degree fahrenheit|degrees fahrenheit|°F|temperature|0.5555555555555556
success|+es||general|1
nanocore|+s|ncores|cpu|1e-9
microcore|+s|μcores|cpu|1e-6
millicore|+s|mcores|cpu|1e-3
kilocore|+s|Kcores|cpu|1e3
megacore|+s|Mcores|cpu|1e6
gigacore|+s|Gcores|cpu|1e9
teracore|+s|Tcores|cpu|1e12
petacore|+s|Pcores|cpu|1e15
exacore|+s|Ecores|cpu|1e18
build|+s||general|1
prediction|+s||general|1
heap|+s||memory|1
volume|+s||disk|1
watt|+s|W|power|1
kilowatt|+s|kW|power|1e3
megawatt|+s|MW|power|1e6
gigawatt|+s|GW|power|1e9
terawatt|+s|TW|power|1e12
view|+s||general|1
microdollar|+s|μ$|money|1e-6
euro|+s|€|money|1
pound|+s|£|money|1
penny|pence|p|money|0.01
yen|=|¥|money|1
milliwatt|+s|mW|power|1e-3
microwatt|+s|μW|power|1e-6
nanowatt|+s|nW|power|1e-9
ampere|+s|A|current|1
milliampere|+s|mA|current|1e-3
volt|+s|V|potential|1
millivolt|+s|mV|potential|1e-3
deciwatt|+s|dW|power|0.1
decidegree celsius|decidegrees celsius|d°C|temperature|0.1
span|+s||apm|1
exception|+s||general|1
run|+s||synthetics|1
hop|+s||network|1
kilobyte|+s|kB|bytes|1e3
megabyte|+s|MB|bytes|1e6
gigabyte|+s|GB|bytes|1e9
terabyte|+s|TB|bytes|1e12
petabyte|+s|PB|bytes|1e15
exabyte|+s|EB|bytes|1e18
frame|+s||general|1
alert|+s||general|1
token|+s||general|1
millijoule|+s|mJ|energy|1e-3
joule|+s|J|energy|1
kilojoule|+s|kJ|energy|1e3
megajoule|+s|MJ|energy|1e6
step|+s||synthetics|1
nanojoule|+s|nJ|energy|1e-9
bit_in_bits_family|bits|bit|bits|1
byte_in_bits_family|bytes|B|bits|8
kilobit|+s|kbit|bits|1e3
megabit|+s|Mbit|bits|1e6
gigabit|+s|Gbit|bits|1e9
terabit|+s|Tbit|bits|1e12
petabit|+s|Pbit|bits|1e15
exabit|+s|Ebit|bits|1e18
"""

# Datadog's currencies after `exabit`, in its order: family money, no plural, no abbreviation.
_CURRENCIES = (
    "afghani|lek|algerian dinar|kwanza|east caribbean dollar|argentine peso|armenian dram|aruban florin|"
    "australian dollar|azerbaijan manat|bahamian dollar|bahraini dinar|taka|barbados dollar|"
    "belarusian ruble|belize dollar|cfa franc bceao|bermudian dollar|indian rupee|ngultrum|boliviano|"
    "mvdol|convertible mark|pula|norwegian krone|brazilian real|brunei dollar|bulgarian lev|burundi franc|"
    "cabo verde escudo|riel|cfa franc beac|canadian dollar|cayman islands dollar|chilean peso|"
    "unidad de fomento|yuan renminbi|colombian peso|unidad de valor real|comorian franc|congolese franc|"
    "new zealand dollar|costa rican colon|cuban peso|convertible peso|netherlands antillean guilder|"
    "czech koruna|danish krone|djibouti franc|dominican peso|egyptian pound|el salvador colón|nakfa|"
    "lilangeni|ethiopian birr|falkland islands pound|fiji dollar|cfp franc|dalasi|lari|ghana cedi|"
    "gibraltar pound|quetzal|guinean franc|guyana dollar|gourde|lempira|hong kong dollar|forint|"
    "iceland króna|rupiah|iranian rial|iraqi dinar|new israeli sheqel|jamaican dollar|jordanian dinar|"
    "tenge|kenyan shilling|north korean won|won|kuwaiti dinar|som|lao kip|lebanese pound|loti|rand|"
    "liberian dollar|libyan dinar|swiss franc|pataca|denar|malagasy ariary|malawi kwacha|"
    "malaysian ringgit|rufiyaa|ouguiya|mauritius rupee|mexican peso|mexican unidad de inversion (udi)|"
    "moldovan leu|tugrik|moroccan dirham|mozambique metical|kyat|namibia dollar|nepalese rupee|"
    "córdoba oro|naira|omani rial|pakistan rupee|balboa|kina|guaraní|sol|philippine peso|złoty|"
    "qatari rial|romanian leu|russian ruble|rwanda franc|saint helena pound|tālā|dobra|saudi riyal|"
    "serbian dinar|seychelles rupee|leone|singapore dollar|sucre|solomon islands dollar|somali shilling|"
    "south sudanese pound|sri lanka rupee|sudanese pound|surinam dollar|swedish krona|wir euro|wir franc|"
    "syrian pound|new taiwan dollar|somoni|tanzanian shilling|baht|pa\u2019anga|trinidad and tobago dollar|"
    "tunisian dinar|turkish lira|new turkmen manat|uganda shilling|hryvnia|uae dirham|"
    "us dollar (next day)|peso uruguayo|uruguayo peso en unidades indexadas (ui)|unidad previsional|"
    "uzbekistan sum|vatu|bolívar soberano|bolívar digital|đồng|yemeni rial|zambian kwacha|zimbabwe gold"
)

_TAIL = """
bit_in_decimal_bytes_family|bits|bit|decimal_bytes|0.125
byte_in_decimal_bytes_family|bytes|B|decimal_bytes|1
bit_in_binary_bytes_family|bits|bit|binary_bytes|0.125
byte_in_binary_bytes_family|bytes|B|binary_bytes|1
collection|+s||general|1
entity|entities||general|1
vector|+s||general|1
nanodollar|+s|n$|money|1e-9
unix second|+s|s|timestamp|1
unix millisecond|+s|ms|timestamp|1e-3
permille|=|‰|percentage|0.1
"""


def _rows(table: str) -> list[Unit]:
    units = []
    for line in table.strip().splitlines():
        name, plural, short, family, scale = line.split("|")
        if plural == "=":
            plural = name
        elif plural.startswith("+"):
            plural = name + plural[1:]
        units.append(Unit(name, plural, short or name, family, float(scale)))
    return units


UNITS: tuple[Unit, ...] = (
    *_rows(_TABLE),
    *(Unit(name, name, name, "money", 1.0) for name in _CURRENCIES.split("|")),
    *_rows(_TAIL),
)
"""Every unit, in Datadog's order (position + 1 is its Datadog id)."""

BY_NAME: Mapping[str, Unit] = {u.name: u for u in UNITS}

SECOND, MINUTE, HOUR = BY_NAME["second"], BY_NAME["minute"], BY_NAME["hour"]

# OTLP's units are UCUM codes (opentelemetry semantic conventions: `s`, `ms`, `By`, `1`, `{request}`).
_UCUM: dict[str, str] = {
    "ns": "nanosecond",
    "us": "microsecond",
    "μs": "microsecond",
    "ms": "millisecond",
    "s": "second",
    "min": "minute",
    "h": "hour",
    "d": "day",
    "wk": "week",
    "bit": "bit",
    "By": "byte",
    "KiBy": "kibibyte",
    "MiBy": "mebibyte",
    "GiBy": "gibibyte",
    "TiBy": "tebibyte",
    "PiBy": "pebibyte",
    "EiBy": "exbibyte",
    "kBy": "kilobyte",
    "KBy": "kilobyte",
    "MBy": "megabyte",
    "GBy": "gigabyte",
    "TBy": "terabyte",
    "PBy": "petabyte",
    "EBy": "exabyte",
    "kbit": "kilobit",
    "Kbit": "kilobit",
    "Mbit": "megabit",
    "Gbit": "gigabit",
    "Tbit": "terabit",
    "Pbit": "petabit",
    "Ebit": "exabit",
    "%": "percent",
    "Hz": "hertz",
    "kHz": "kilohertz",
    "MHz": "megahertz",
    "GHz": "gigahertz",
    "Cel": "degree celsius",
    "[degF]": "degree fahrenheit",
    "W": "watt",
    "kW": "kilowatt",
    "MW": "megawatt",
    "GW": "gigawatt",
    "TW": "terawatt",
    "dW": "deciwatt",
    "mW": "milliwatt",
    "uW": "microwatt",
    "nW": "nanowatt",
    "A": "ampere",
    "mA": "milliampere",
    "V": "volt",
    "mV": "millivolt",
    "J": "joule",
    "kJ": "kilojoule",
    "MJ": "megajoule",
    "mJ": "millijoule",
    "nJ": "nanojoule",
    "USD": "dollar",
    "EUR": "euro",
    "GBP": "pound",
    "JPY": "yen",
}


def _lookup_tables() -> tuple[dict[str, Unit], dict[str, Unit]]:
    exact: dict[str, Unit] = {code: BY_NAME[name] for code, name in _UCUM.items()}
    folded: dict[str, Unit] = {}
    for unit in UNITS:
        exact.setdefault(unit.name, unit)
        exact.setdefault(unit.plural, unit)
    # Abbreviations last, first unit wins (`B` is the byte, not the byte of the bits family).
    for unit in UNITS:
        exact.setdefault(unit.short_name, unit)
    for text, unit in exact.items():
        folded.setdefault(text.casefold(), unit)
    for name, unit in BY_NAME.items():
        folded[name.casefold()] = unit
    return exact, folded


_EXACT, _FOLDED = _lookup_tables()


def unit_named(name: str) -> Unit | None:
    """The catalog unit with exactly this name (`byte`, `garbage collection`), as metadata sets them."""
    return BY_NAME.get(name)


def resolve_unit(text: str) -> Unit | None:
    """The unit a sender means by `text`: a name, plural, UCUM code, abbreviation or `{annotation}`."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text:
        return None
    return _EXACT.get(text) or _FOLDED.get(text.casefold())


def parse_metric_unit(text: str | None, per_unit: str | None = None) -> MetricUnit | None:
    """A stored unit string (`ms`, `By/s`, `byte`), with an explicit `per_unit` overriding its own; None
    when it is empty, dimensionless or not something the catalog names."""
    if not text or not text.strip():
        return None
    own_per: str | None = None
    if "/" in text:
        text, own_per = text.split("/", 1)
    unit = resolve_unit(text)
    if unit is None:
        return None
    per_text = per_unit if per_unit else own_per
    if not per_text:
        return MetricUnit(unit)
    per = resolve_unit(per_text)
    return None if per is None else MetricUnit(unit, per)


def close_names(name: str, limit: int = 3) -> list[str]:
    """Catalog names a sender may have meant by `name` (which is not one): the unit it stands for as a
    plural, UCUM code or abbreviation, else names spelled alike; for error messages."""
    meant = resolve_unit(name)
    if meant is not None:
        return [meant.name]
    return difflib.get_close_matches(name.casefold(), list(BY_NAME), n=limit, cutoff=0.7)
