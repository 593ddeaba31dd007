"""What a Dynatrace Timeseries API v1 data request means: storage queries over the metric store, and the
slots, entities, totals and predictions made of their answers. Decisions are documented in
docs/dynatrace.md.

- **Slots.** Dynatrace answers per time slot, each point at the start of its slot, the slots the
  timeframe's start and end fall in included whole. The slot length (`resolutionInMillisUTC`) follows
  the timeframe's length (`RESOLUTIONS`), raised to Dynatrace's storage tier for old data
  (`STORAGE_TIERS`).
- **Entities.** A series belongs to the entity its `dt.entity.<type>` tag names (a display name comes
  from `dt.entity.<type>.name`). The points of all series of an entity are aggregated together per slot
  (an entity's AVG is the mean of all its points, its MEDIAN their median). A series naming several
  entities (a host and a process or disk of it) belongs to the most specific one: Dynatrace's container
  types (`PARENT_TYPES`: host, process group, service, application, ...) are parents of the others, and
  among entities of one rank the last by type name is the child; with `include_parent_ids` it belongs to
  all of them, keyed parents first, `"HOST-1, PROCESS_GROUP_INSTANCE-2"`. A series without an entity
  tag is an entity of its own, keyed `CUSTOM_DEVICE-<16 hex digits>` from a hash of its `key:value` tags
  and named by them.
- **Aggregation** is over the raw values of the points in each slot (for distributions and histograms
  over what their points summarize); MEDIAN and PERCENTILE interpolate between the two nearest values.
- **TOTAL** is one value per entity over every point of the same slots, at the first slot's start.
- **Predict** extends each entity's series by as many slots as the timeframe holds, forecast on a
  robust straight line with a 95% band (`series.functions.forecast`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sextant.core.metrics import normalize_tags
from sextant.core.timeutil import DAY_MS, HOUR_MS
from sextant.query.metrics import (
    AllTags,
    PointValue,
    SeriesQuery,
    TagAnd,
    TagFilter,
    TagGlob,
    TagNot,
    TagOr,
)
from sextant.series.buckets import bucket_times
from sextant.series.frame import SeriesFrame
from sextant.series.functions.forecast import forecast
from sextant.storage.backend import Backend

MINUTE_MS = 60_000
RELATIVE_TIMES: dict[str, int] = {
    "min": MINUTE_MS,
    "5mins": 5 * MINUTE_MS,
    "10mins": 10 * MINUTE_MS,
    "15mins": 15 * MINUTE_MS,
    "30mins": 30 * MINUTE_MS,
    "hour": HOUR_MS,
    "2hours": 2 * HOUR_MS,
    "6hours": 6 * HOUR_MS,
    "day": DAY_MS,
    "3days": 3 * DAY_MS,
    "week": 7 * DAY_MS,
    "month": 30 * DAY_MS,
}
# "The maximum allowed timeframe is 6 months": the longest six calendar months (July to December).
MAX_TIMEFRAME_MS = 184 * DAY_MS
# Dynatrace predicts from timeframes of up to 30 minutes.
MAX_PREDICT_TIMEFRAME_MS = 30 * MINUTE_MS
# (longest timeframe, slot length), the first that fits; longer timeframes get a day.
RESOLUTIONS = (
    (2 * HOUR_MS, MINUTE_MS),
    (6 * HOUR_MS, 5 * MINUTE_MS),
    (DAY_MS, 15 * MINUTE_MS),
    (3 * DAY_MS, 30 * MINUTE_MS),
    (7 * DAY_MS, HOUR_MS),
    (31 * DAY_MS, 6 * HOUR_MS),
)
LONGEST_RESOLUTION = DAY_MS
# (age of the timeframe's start, shortest slot): Dynatrace keeps older data at coarser resolutions.
STORAGE_TIERS = ((400 * DAY_MS, DAY_MS), (28 * DAY_MS, HOUR_MS), (14 * DAY_MS, 5 * MINUTE_MS))
# The band of a prediction: forecast +- this many standard errors (95%).
PREDICTION_DEVIATIONS = 1.96

AGGREGATIONS = ("AVG", "SUM", "MIN", "MAX", "COUNT", "MEDIAN", "PERCENTILE")
_SUMMARIZED = ("AVG", "SUM", "MIN", "MAX", "COUNT")
# Kinds whose points summarize many measurements (value = their sum, with their count).
_SAMPLE_KINDS = ("distribution", "histogram", "exponential_histogram", "summary")
_TIME_AGGREGATIONS = {
    "AVG": "avg",
    "SUM": "sum",
    "MIN": "min",
    "MAX": "max",
    "COUNT": "count",
    "MEDIAN": "p50",
}

ENTITY_PREFIX = "dt.entity."
_ENTITY_KEY = re.compile(r"dt\.entity\.([a-z0-9_]+)")
_ENTITY_NAME_KEY = re.compile(r"dt\.entity\.([a-z0-9_]+)\.name")
SYNTHETIC_ENTITY = "CUSTOM_DEVICE"
# Entity types that contain others in Dynatrace's topology: in a series that names one of them and
# another entity, they are the other's parents.
PARENT_TYPES = frozenset(
    {
        "application",
        "cloud_application",
        "cloud_application_namespace",
        "custom_application",
        "custom_device_group",
        "host",
        "host_group",
        "kubernetes_cluster",
        "kubernetes_node",
        "mobile_application",
        "process_group",
        "service",
    }
)
# `filters` keys (POST) and the tag key each one compares.
FILTER_TAGS = {
    "host": "dt.entity.host",
    "osType": "os.type",
    "processType": "processType",
    "serviceType": "serviceType",
    "technology": "technology",
    "webServiceName": "webServiceName",
    "webServiceNamespace": "webServiceNamespace",
}
_TAG_CONTEXT = re.compile(r"^\[([^\]]*)\](.+)$")


def aggregation_types(kind: str | None, temporality: str | None = None) -> tuple[str, ...]:
    """The aggregations a metric of this kind answers: all of them over raw values, the sum's relatives
    only over summaries without raw values, and of histograms of running totals (cumulative) only their
    extremes, which running totals keep (their sums and counts would be added up again in every slot)."""
    if kind in ("histogram", "exponential_histogram"):
        return ("MIN", "MAX") if temporality == "cumulative" else _SUMMARIZED
    if kind == "summary":
        return ("AVG", "SUM", "COUNT")
    return AGGREGATIONS


def resolution_ms(start_ms: int, end_ms: int, now_ms: int) -> int:
    length = end_ms - start_ms
    chosen = next((slot for longest, slot in RESOLUTIONS if length <= longest), LONGEST_RESOLUTION)
    floor = next((slot for age, slot in STORAGE_TIERS if now_ms - start_ms > age), MINUTE_MS)
    return max(chosen, floor)


def entity_of(tag: str) -> tuple[str, str] | None:
    """(type, id) of a `dt.entity.<type>:<id>` tag."""
    key, _, value = tag.partition(":")
    match = _ENTITY_KEY.fullmatch(key)
    return (match.group(1), value) if match and value else None


def entity_name_of(tag: str) -> tuple[str, str] | None:
    """(type, name) of a `dt.entity.<type>.name:<name>` tag."""
    key, _, value = tag.partition(":")
    match = _ENTITY_NAME_KEY.fullmatch(key)
    return (match.group(1), value) if match and value else None


def entity_rank(entity_type: str) -> tuple[int, str]:
    """Sorts an entity's parents before it."""
    return (0 if entity_type in PARENT_TYPES else 1, entity_type)


def synthetic_entity(tags: tuple[str, ...]) -> str:
    """The id of the entity a series without an entity tag is: one per set of `key:value` tags."""
    digest = hashlib.blake2b("\0".join(tags).encode(), digest_size=8).hexdigest().upper()
    return f"{SYNTHETIC_ENTITY}-{digest}"


def _keyed_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    # Bare tags are not dimensions: they neither tell entities apart nor name them.
    return normalize_tags(t for t in tags if ":" in t)


def dimensions(series_tags: list[tuple[str, ...]]) -> list[str]:
    """A metric's dimensions as the v1 API lists them: the entity types its series belong to
    (`HOST`), and `CUSTOM_DEVICE` when some series have no entity tag."""
    types: set[str] = set()
    synthetic = False
    for tags in series_tags:
        found = [entity[0] for entity in map(entity_of, tags) if entity]
        types.update(found)
        synthetic = synthetic or not found
    named = [t.upper() for t in sorted(types, key=entity_rank)]
    return [*named, SYNTHETIC_ENTITY] if synthetic else named


def tag_filter(tag: str) -> TagFilter:
    """A `tag` parameter: `key:value` is that tag, a bare `tag` that tag or any value of that key;
    `[context]key:value` is the tag as written or without its context (series tags carry none)."""
    context = _TAG_CONTEXT.match(tag)
    plain = context.group(2) if context else tag
    matched: TagFilter = TagGlob(plain) if ":" in plain else TagOr((TagGlob(plain), TagGlob(plain + ":*")))
    return TagOr((TagGlob(tag), matched)) if context else matched


def stored_series(store: Backend, org_id: int, metric: str, timeout_s: float) -> SeriesFrame:
    """Every series of the metric with its tags (and the metric's kind and unit), read over an empty
    window so that no point is scanned."""
    return store.query_series(SeriesQuery(org_id, metric, AllTags(), 0, 1, 1, "count"), timeout_s)


class UnknownEntities(ValueError):
    """Entities that deliver no series of the metric."""

    def __init__(self, entities: list[str]) -> None:
        super().__init__(", ".join(entities))
        self.entities = entities


@dataclass(frozen=True)
class DataRequest:
    org_id: int
    metric: str
    kind: str | None
    aggregation: str
    start_ms: int
    end_ms: int
    temporality: str | None = None
    percentile: int | None = None
    total: bool = False
    predict: bool = False
    entities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    filters: Mapping[str, str] = field(default_factory=dict)
    include_parent_ids: bool = False


@dataclass(frozen=True)
class Record:
    """The points one dataPoints key gets: a value per slot, and for predicted slots the band."""

    key: str
    values: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64] | None = None
    upper: npt.NDArray[np.float64] | None = None


@dataclass(frozen=True)
class DataAnswer:
    times: npt.NDArray[np.int64]
    resolution_ms: int
    records: list[Record]
    # Display name of every entity of the records (and every entity asked for).
    entities: dict[str, str]
    # Index of the first predicted slot (len(times) without a prediction).
    predicted_from: int


@dataclass(frozen=True)
class _Part:
    """Series whose records are keyed alike: by the ids of these entity types, or (none) by their tags."""

    entity_types: tuple[str, ...]
    group_by: tuple[str, ...]
    filter: TagFilter


class _Entities:
    """What the stored series of a metric say about its entities."""

    def __init__(self, series_tags: list[tuple[str, ...]], metric: str) -> None:
        self.types: set[str] = set()
        self.names: dict[str, str] = {}
        self.types_of: dict[str, set[str]] = {}
        self.synthetic: dict[str, str] = {}
        self.entityless_keys: set[str] = set()
        self.type_sets: set[tuple[str, ...]] = set()
        self._metric = metric
        for tags in series_tags:
            entities = [e for e in map(entity_of, tags) if e]
            if not entities:
                keyed = _keyed_tags(tags)
                self.synthetic[synthetic_entity(keyed)] = self.synthetic_name(keyed)
                self.entityless_keys.update(t.partition(":")[0] for t in keyed)
                continue
            names = dict(n for n in map(entity_name_of, tags) if n)
            for kind, entity_id in entities:
                self.types.add(kind)
                self.types_of.setdefault(entity_id, set()).add(kind)
                if kind in names:
                    self.names.setdefault(entity_id, names[kind])
            self.type_sets.add(tuple(sorted({kind for kind, _ in entities}, key=entity_rank)))

    def synthetic_name(self, keyed: tuple[str, ...]) -> str:
        return ", ".join(keyed) or self._metric

    def known(self, entity_id: str) -> bool:
        return entity_id in self.types_of or entity_id in self.synthetic

    def name(self, entity_id: str) -> str:
        return self.names.get(entity_id) or self.synthetic.get(entity_id) or entity_id


def _has(entity_type: str) -> TagFilter:
    return TagGlob(f"{ENTITY_PREFIX}{entity_type}:*")


def _parts(entities: _Entities, request: DataRequest, selection: TagFilter) -> list[_Part]:
    real = [e for e in request.entities if e in entities.types_of]
    wanted_synthetic = [e for e in request.entities if e in entities.synthetic]
    parts: list[_Part] = []
    if not request.entities or real:
        entity_filter: TagFilter = AllTags()
        if real:
            entity_filter = TagOr(
                tuple(TagGlob(f"{ENTITY_PREFIX}{t}:{e}") for e in real for t in sorted(entities.types_of[e]))
            )
        if request.include_parent_ids:
            keyings = {types: set(entities.types) - set(types) for types in entities.type_sets}
        else:
            keyings = {
                (types[-1],): {t for t in entities.types if entity_rank(t) > entity_rank(types[-1])}
                for types in entities.type_sets
            }
        for types, excluded in sorted(keyings.items()):
            scope: list[TagFilter] = [selection, entity_filter, *map(_has, types)]
            if excluded:
                scope.append(TagNot(TagOr(tuple(map(_has, sorted(excluded))))))
            group_by = tuple(ENTITY_PREFIX + t for t in types)
            parts.append(_Part(types, group_by, TagAnd(tuple(scope))))
    if entities.synthetic and (not request.entities or wanted_synthetic):
        scope = [selection]
        if entities.types:
            scope.append(TagNot(TagOr(tuple(map(_has, sorted(entities.types))))))
        parts.append(_Part((), tuple(sorted(entities.entityless_keys)), TagAnd(tuple(scope))))
    return parts


def _selection(request: DataRequest) -> TagFilter:
    scope = [tag_filter(tag) for tag in request.tags]
    scope.extend(TagGlob(f"{FILTER_TAGS[key]}:{value}") for key, value in sorted(request.filters.items()))
    return TagAnd(tuple(scope)) if scope else AllTags()


def _storage_aggregation(request: DataRequest) -> tuple[str, PointValue]:
    if request.aggregation == "PERCENTILE":
        return f"p{request.percentile}", "value"
    if request.aggregation == "SUM" and request.kind == "rate":
        # A rate point stands for its value times its interval (in seconds) of events.
        return "sum", "value_times_interval"
    if request.aggregation == "SUM" and request.kind == "count" and request.temporality == "cumulative":
        # Running totals: what a slot counted is how much they grew in it.
        return "sum", "counter_increase"
    return _TIME_AGGREGATIONS[request.aggregation], "value"


def _record_key(part: _Part, labels: tuple[str | None, ...]) -> str:
    if part.entity_types:
        return ", ".join(v for v in labels if v is not None)
    pairs = zip(part.group_by, labels, strict=True)
    return synthetic_entity(normalize_tags(f"{k}:{v}" for k, v in pairs if v is not None))


def run(store: Backend, request: DataRequest, now_ms: int, timeout_s: float) -> DataAnswer:
    """The request's records over its slots (raises UnknownEntities for entities without series)."""
    resolution = resolution_ms(request.start_ms, request.end_ms, now_ms)
    slots = bucket_times(request.start_ms, request.end_ms, resolution)
    first, stop = int(slots[0]), int(slots[-1]) + resolution
    listing = stored_series(store, request.org_id, request.metric, timeout_s)
    entities = _Entities(listing.tags, request.metric)
    unknown = [e for e in request.entities if not entities.known(e)]
    if unknown:
        raise UnknownEntities(unknown)
    aggregation, point_value = _storage_aggregation(request)
    distribution = request.kind in _SAMPLE_KINDS
    # TOTAL: one bucket from the epoch to the end of the slots, of which only the slots' points are read.
    step = stop if request.total else resolution
    found: dict[str, npt.NDArray[np.float64]] = {}
    for part in _parts(entities, request, _selection(request)):
        query = SeriesQuery(
            org_id=request.org_id,
            metric=request.metric,
            filter=part.filter,
            start_ms=first,
            end_ms=stop,
            step_ms=step,
            time_aggregation=aggregation,
            point_value=point_value,
            group_by=part.group_by,
            samples=aggregation if distribution else None,
            pool_groups=True,
        )
        frame = store.query_series(query, timeout_s)
        for row, labels in enumerate(frame.labels):
            key = _record_key(part, labels)
            # Series without an entity tag are selected together: keep the entities asked for.
            if part.entity_types or not request.entities or key in request.entities:
                found[key] = frame.values[row]
    keys = sorted(found)
    times = np.array([first], dtype=np.int64) if request.total else slots
    records = [Record(key, found[key]) for key in keys]
    predicted_from = len(times)
    if request.predict and records:
        times, records = _predicted(times, resolution, records, request.end_ms - request.start_ms)
    named = {entity for key in keys for entity in key.split(", ")} | set(request.entities)
    return DataAnswer(
        times=times,
        resolution_ms=stop - first if request.total else resolution,
        records=records,
        entities={entity: entities.name(entity) for entity in sorted(named)},
        predicted_from=predicted_from,
    )


def _predicted(
    times: npt.NDArray[np.int64], resolution: int, records: list[Record], horizon_ms: int
) -> tuple[npt.NDArray[np.int64], list[Record]]:
    frame = SeriesFrame(
        times=times,
        values=np.vstack([r.values for r in records]),
        group_by=(),
        labels=[() for _ in records],
        step_ms=resolution,
    )
    ahead = forecast(frame, "linear", PREDICTION_DEVIATIONS, horizon_ms=horizon_ms)
    assert ahead.lower is not None and ahead.upper is not None
    extended = [Record(r.key, ahead.values[i], ahead.lower[i], ahead.upper[i]) for i, r in enumerate(records)]
    return ahead.times, extended
