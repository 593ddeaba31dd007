"""OTLP/JSON: `ExportMetricsServiceRequest` decoded by msgspec into twins of the protobuf messages.

protobuf's own `json_format` is pure Python (about 0.2 s per MB of metrics) and reads `traceId`/`spanId`
as base64, where OTLP/JSON writes hex. These Structs decode in C and follow the OTLP/JSON rules:
lowerCamelCase keys, 64-bit integers as decimal strings or numbers, enums as integers only, unknown
fields ignored. Exemplars are not read at all (the store keeps none), so their hex ids never matter.

The protobuf field names (`data_points`, ...) are not valid OTLP/JSON keys, but protobuf's
`MessageToJson(preserving_proto_field_name=True)` writes them, and ignoring them as unknown would
silently drop the data; like the Collector's decoder, they are accepted as aliases.

Each Struct has the attribute names of its protobuf message, with `WhichOneof` and `HasField` where the
message has oneofs and optional fields, so that one translation reads either.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, UnsetType

UInt64 = Annotated[int, msgspec.Meta(ge=0)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
UInt32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]


def _alias(name: str) -> Any:
    return msgspec.field(default=UNSET, name=name)


class _Message(msgspec.Struct, rename="camel"):
    """The protobuf message API the translation uses: `WhichOneof`, `HasField` (named as protobuf does)."""

    # (alias attribute, attribute) pairs: a value sent under the protobuf field name lands in the
    # attribute the translation reads.
    _aliases: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __post_init__(self) -> None:
        for alias, attribute in self._aliases:
            value = getattr(self, alias)
            if value is not UNSET:
                setattr(self, attribute, value)

    def HasField(self, name: str) -> bool:
        return getattr(self, name) is not None


class ArrayValue(msgspec.Struct):
    values: list[AnyValue] = []


class KeyValueList(msgspec.Struct):
    values: list[KeyValue] = []


_ANY_VALUE_FIELDS = (
    "string_value",
    "bool_value",
    "int_value",
    "double_value",
    "array_value",
    "kvlist_value",
    "bytes_value",
)


class AnyValue(_Message):
    string_value: str | None = None
    bool_value: bool | None = None
    int_value: Int64 | None = None
    double_value: float | None = None
    array_value: ArrayValue | None = None
    kvlist_value: KeyValueList | None = None
    bytes_value: bytes | None = None
    string_value_: str | UnsetType = _alias("string_value")
    bool_value_: bool | UnsetType = _alias("bool_value")
    int_value_: Int64 | UnsetType = _alias("int_value")
    double_value_: float | UnsetType = _alias("double_value")
    array_value_: ArrayValue | UnsetType = _alias("array_value")
    kvlist_value_: KeyValueList | UnsetType = _alias("kvlist_value")
    bytes_value_: bytes | UnsetType = _alias("bytes_value")
    _aliases = tuple((f + "_", f) for f in _ANY_VALUE_FIELDS)

    def WhichOneof(self, group: Literal["value"]) -> str | None:
        for name in _ANY_VALUE_FIELDS:
            if getattr(self, name) is not None:
                return name
        return None


class KeyValue(msgspec.Struct):
    key: str = ""
    value: AnyValue = msgspec.field(default_factory=AnyValue)


class Resource(msgspec.Struct):
    attributes: list[KeyValue] = []


class NumberDataPoint(_Message):
    attributes: list[KeyValue] = []
    start_time_unix_nano: UInt64 = 0
    time_unix_nano: UInt64 = 0
    as_double: float | None = None
    as_int: Int64 | None = None
    flags: UInt32 = 0
    start_time_unix_nano_: UInt64 | UnsetType = _alias("start_time_unix_nano")
    time_unix_nano_: UInt64 | UnsetType = _alias("time_unix_nano")
    as_double_: float | UnsetType = _alias("as_double")
    as_int_: Int64 | UnsetType = _alias("as_int")
    _aliases = (
        ("start_time_unix_nano_", "start_time_unix_nano"),
        ("time_unix_nano_", "time_unix_nano"),
        ("as_double_", "as_double"),
        ("as_int_", "as_int"),
    )

    def WhichOneof(self, group: Literal["value"]) -> Literal["as_double", "as_int"] | None:
        if self.as_double is not None:
            return "as_double"
        return "as_int" if self.as_int is not None else None


class HistogramDataPoint(_Message):
    attributes: list[KeyValue] = []
    start_time_unix_nano: UInt64 = 0
    time_unix_nano: UInt64 = 0
    count: UInt64 = 0
    sum: float | None = None
    bucket_counts: list[UInt64] = []
    explicit_bounds: list[float] = []
    flags: UInt32 = 0
    min: float | None = None
    max: float | None = None
    start_time_unix_nano_: UInt64 | UnsetType = _alias("start_time_unix_nano")
    time_unix_nano_: UInt64 | UnsetType = _alias("time_unix_nano")
    bucket_counts_: list[UInt64] | UnsetType = _alias("bucket_counts")
    explicit_bounds_: list[float] | UnsetType = _alias("explicit_bounds")
    _aliases = (
        ("start_time_unix_nano_", "start_time_unix_nano"),
        ("time_unix_nano_", "time_unix_nano"),
        ("bucket_counts_", "bucket_counts"),
        ("explicit_bounds_", "explicit_bounds"),
    )


class Buckets(_Message):
    offset: Int32 = 0
    bucket_counts: list[UInt64] = []
    bucket_counts_: list[UInt64] | UnsetType = _alias("bucket_counts")
    _aliases = (("bucket_counts_", "bucket_counts"),)


class ExponentialHistogramDataPoint(_Message):
    attributes: list[KeyValue] = []
    start_time_unix_nano: UInt64 = 0
    time_unix_nano: UInt64 = 0
    count: UInt64 = 0
    sum: float | None = None
    scale: Int32 = 0
    zero_count: UInt64 = 0
    positive: Buckets = msgspec.field(default_factory=Buckets)
    negative: Buckets = msgspec.field(default_factory=Buckets)
    flags: UInt32 = 0
    min: float | None = None
    max: float | None = None
    zero_threshold: float = 0.0
    start_time_unix_nano_: UInt64 | UnsetType = _alias("start_time_unix_nano")
    time_unix_nano_: UInt64 | UnsetType = _alias("time_unix_nano")
    zero_count_: UInt64 | UnsetType = _alias("zero_count")
    zero_threshold_: float | UnsetType = _alias("zero_threshold")
    _aliases = (
        ("start_time_unix_nano_", "start_time_unix_nano"),
        ("time_unix_nano_", "time_unix_nano"),
        ("zero_count_", "zero_count"),
        ("zero_threshold_", "zero_threshold"),
    )


class ValueAtQuantile(msgspec.Struct):
    quantile: float = 0.0
    value: float = 0.0


class SummaryDataPoint(_Message):
    attributes: list[KeyValue] = []
    start_time_unix_nano: UInt64 = 0
    time_unix_nano: UInt64 = 0
    count: UInt64 = 0
    sum: float = 0.0
    quantile_values: list[ValueAtQuantile] = []
    flags: UInt32 = 0
    start_time_unix_nano_: UInt64 | UnsetType = _alias("start_time_unix_nano")
    time_unix_nano_: UInt64 | UnsetType = _alias("time_unix_nano")
    quantile_values_: list[ValueAtQuantile] | UnsetType = _alias("quantile_values")
    _aliases = (
        ("start_time_unix_nano_", "start_time_unix_nano"),
        ("time_unix_nano_", "time_unix_nano"),
        ("quantile_values_", "quantile_values"),
    )


class Gauge(_Message):
    data_points: list[NumberDataPoint] = []
    data_points_: list[NumberDataPoint] | UnsetType = _alias("data_points")
    _aliases = (("data_points_", "data_points"),)


class Sum(_Message):
    data_points: list[NumberDataPoint] = []
    aggregation_temporality: Int32 = 0
    is_monotonic: bool = False
    data_points_: list[NumberDataPoint] | UnsetType = _alias("data_points")
    aggregation_temporality_: Int32 | UnsetType = _alias("aggregation_temporality")
    is_monotonic_: bool | UnsetType = _alias("is_monotonic")
    _aliases = (
        ("data_points_", "data_points"),
        ("aggregation_temporality_", "aggregation_temporality"),
        ("is_monotonic_", "is_monotonic"),
    )


class Histogram(_Message):
    data_points: list[HistogramDataPoint] = []
    aggregation_temporality: Int32 = 0
    data_points_: list[HistogramDataPoint] | UnsetType = _alias("data_points")
    aggregation_temporality_: Int32 | UnsetType = _alias("aggregation_temporality")
    _aliases = (
        ("data_points_", "data_points"),
        ("aggregation_temporality_", "aggregation_temporality"),
    )


class ExponentialHistogram(_Message):
    data_points: list[ExponentialHistogramDataPoint] = []
    aggregation_temporality: Int32 = 0
    data_points_: list[ExponentialHistogramDataPoint] | UnsetType = _alias("data_points")
    aggregation_temporality_: Int32 | UnsetType = _alias("aggregation_temporality")
    _aliases = (
        ("data_points_", "data_points"),
        ("aggregation_temporality_", "aggregation_temporality"),
    )


class Summary(_Message):
    data_points: list[SummaryDataPoint] = []
    data_points_: list[SummaryDataPoint] | UnsetType = _alias("data_points")
    _aliases = (("data_points_", "data_points"),)


_DATA_FIELDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


class Metric(_Message):
    name: str = ""
    description: str = ""
    unit: str = ""
    gauge: Gauge | None = None
    sum: Sum | None = None
    histogram: Histogram | None = None
    exponential_histogram: ExponentialHistogram | None = None
    summary: Summary | None = None
    exponential_histogram_: ExponentialHistogram | UnsetType = _alias("exponential_histogram")
    _aliases = (("exponential_histogram_", "exponential_histogram"),)

    def WhichOneof(self, group: Literal["data"]) -> str | None:
        for name in _DATA_FIELDS:
            if getattr(self, name) is not None:
                return name
        return None


class ScopeMetrics(msgspec.Struct):
    metrics: list[Metric] = []


class ResourceMetrics(_Message):
    resource: Resource = msgspec.field(default_factory=Resource)
    scope_metrics: list[ScopeMetrics] = []
    scope_metrics_: list[ScopeMetrics] | UnsetType = _alias("scope_metrics")
    _aliases = (("scope_metrics_", "scope_metrics"),)


class ExportMetricsServiceRequest(_Message):
    """An OTLP/JSON metrics export (`POST /v1/metrics` with `Content-Type: application/json`)."""

    resource_metrics: list[ResourceMetrics] = []
    resource_metrics_: list[ResourceMetrics] | UnsetType = _alias("resource_metrics")
    _aliases = (("resource_metrics_", "resource_metrics"),)


class ExportMetricsPartialSuccess(msgspec.Struct, rename="camel", omit_defaults=True):
    # An int64, hence a decimal string in OTLP/JSON; written even when 0 (a warning).
    rejected_data_points: str
    error_message: str = ""


class ExportMetricsServiceResponse(msgspec.Struct, rename="camel", omit_defaults=True):
    """`{}` when everything was stored; `partialSuccess` says how many points were refused and why."""

    partial_success: ExportMetricsPartialSuccess | None = None


class InvalidJson(ValueError):
    """A body that is not an OTLP/JSON metrics export; the message says where and why."""


class NotJson(InvalidJson):
    """A body that is not one JSON document at all."""


# Lax mode: OTLP/JSON writes 64-bit integers as strings and non-finite doubles as "NaN", "Infinity".
_decoder = msgspec.json.Decoder(ExportMetricsServiceRequest, strict=False)


def decode_json_request(body: bytes) -> ExportMetricsServiceRequest:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidJson(f"not an OTLP/JSON ExportMetricsServiceRequest: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise NotJson(f"body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise InvalidJson("body is JSON nested too deeply") from exc


def decode_ndjson_request(body: bytes) -> ExportMetricsServiceRequest:
    """One export per non-empty line (JSON Lines), merged: what PostHog's capture also accepts."""
    merged = ExportMetricsServiceRequest()
    for number, line in enumerate(body.splitlines(), 1):
        if line.strip():
            try:
                merged.resource_metrics.extend(decode_json_request(line).resource_metrics)
            except InvalidJson as exc:
                raise InvalidJson(f"line {number}: {exc}") from None
    return merged
