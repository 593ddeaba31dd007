"""Timeseries definitions: every stored metric and every registered custom timeseries, as
`TimeseriesDefinition`s.

A stored metric's id is its name as sent, display name included; its dimensions are the entity types its
series belong to (see query/dynatrace_timeseries.py); its aggregation types follow its kind; its unit is
mapped to a v1 unit. Every metric is `CUSTOM` (Sextant has no built-in metrics): `detailedSource` is
`Ingest` for what an intake stored and `API` for a registration, whose fields win over the stored ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sextant.control.custom_timeseries import CustomTimeseries
from sextant.faces.dynatrace.timeseries_messages import TimeseriesDefinition
from sextant.faces.dynatrace.timeseries_registration import CUSTOM_DEVICE
from sextant.faces.dynatrace.units import COUNT, known_unit, v1_unit
from sextant.query.dynatrace_timeseries import aggregation_types, dimensions

FILTER = "CUSTOM"
INGESTED = "Ingest"
REGISTERED = "API"


@dataclass(frozen=True)
class StoredMetric:
    """A metric as the store knows it: its latest kind, unit and sum temporality, and its series' tags."""

    name: str
    kind: str | None
    unit: str | None
    temporality: str | None
    series_tags: list[tuple[str, ...]]


def definition(
    stored: StoredMetric | None,
    registered: CustomTimeseries | None,
    warnings: tuple[str, ...] = (),
) -> TimeseriesDefinition:
    """The definition of a metric stored, registered, or both."""
    kind = stored.kind if stored else None
    aggregations = list(aggregation_types(kind, stored.temporality if stored else None))
    if registered is not None:
        return TimeseriesDefinition(
            timeseriesId=registered.timeseries_id,
            displayName=registered.display_name,
            dimensions=[CUSTOM_DEVICE, *registered.dimensions],
            aggregationTypes=aggregations,
            unit=(known_unit(registered.unit) or COUNT) if registered.unit else COUNT,
            filter=FILTER,
            detailedSource=REGISTERED,
            types=list(registered.types),
            warnings=list(warnings) or None,
        )
    assert stored is not None
    return TimeseriesDefinition(
        timeseriesId=stored.name,
        displayName=stored.name,
        dimensions=dimensions(stored.series_tags),
        aggregationTypes=aggregations,
        unit=v1_unit(stored.unit),
        filter=FILTER,
        detailedSource=INGESTED,
        types=[],
    )


def selected(
    definitions: list[TimeseriesDefinition], source: str | None, detailed_source: str | None
) -> list[TimeseriesDefinition]:
    """The definitions a listing's `source` and `detailedSource` keep (`detailedSource` in any case)."""
    kept = [d for d in definitions if source in (None, "ALL", d.filter)]
    if detailed_source is not None:
        kept = [d for d in kept if d.detailedSource.lower() == detailed_source.lower()]
    return kept
