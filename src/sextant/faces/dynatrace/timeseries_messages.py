"""The request and response bodies of the Timeseries API v1, named and shaped as Dynatrace's
specification (Environment API v1) has them."""

from __future__ import annotations

import msgspec

# A data point: [timestamp, value], or for a predicted slot [timestamp, value, lower, upper]; a value is
# null where the slot has no data.
DataPoint = tuple[float | None, ...]


class TimeseriesDefinition(msgspec.Struct, omit_defaults=True):
    """The configuration of a metric with all its parameters."""

    timeseriesId: str
    displayName: str
    dimensions: list[str]
    aggregationTypes: list[str]
    unit: str
    filter: str
    detailedSource: str
    types: list[str]
    pluginId: str | None = None
    warnings: list[str] | None = None


class TimeseriesDataPointQueryResult(msgspec.Struct):
    """List of metric's datapoints, as well as their parameters."""

    dataPoints: dict[str, list[DataPoint]]
    unit: str
    resolutionInMillisUTC: int
    aggregationType: str
    entities: dict[str, str]
    timeseriesId: str


class TimeseriesQueryResult(TimeseriesDefinition, omit_defaults=True):
    """A metric's definition and, with includeData=true, its data points."""

    dataResult: TimeseriesDataPointQueryResult | None = None


class TimeseriesQueryResultWrapper(msgspec.Struct):
    result: TimeseriesDataPointQueryResult


class TimeseriesQueryMessage(msgspec.Struct, forbid_unknown_fields=True):
    """Filtering parameters for a timeseries query (POST). Booleans may be sent as "true" / "false", as
    Dynatrace's own example does."""

    timeseriesId: str | None = None
    aggregationType: str | None = None
    startTimestamp: int | None = None
    endTimestamp: int | None = None
    predict: bool | str | None = None
    relativeTime: str | None = None
    queryMode: str | None = None
    entities: list[str] | None = None
    tags: list[str] | None = None
    filters: dict[str, str] | None = None
    percentile: int | None = None
    includeParentIds: bool | str | None = None
    considerMaintenanceWindowsForAvailability: bool | str | None = None


class TimeseriesRegistrationMessage(msgspec.Struct, forbid_unknown_fields=True):
    """The definition of a custom metric (PUT)."""

    displayName: str | None = None
    unit: str | None = None
    dimensions: list[str] | None = None
    types: list[str] | None = None
