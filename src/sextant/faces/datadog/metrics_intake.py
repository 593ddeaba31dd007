"""Datadog metric intake: `POST /api/v2/series`, `POST /api/v1/series`, `POST /api/v1/distribution_points`.

Each request is decoded into msgspec Structs in one pass and validated all-or-nothing: the first bad
series or point refuses the whole request with `{"errors":["..."]}` naming where it is (`series[2]
.points[5].value`), and nothing of it is stored. An accepted request is answered 202 once its points are
durable. Points are added series by series (`PointBatch.add_values`): this loop runs for every sample
the intake takes, so nothing in it works point by point in Python that a builtin can do on the list.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs

import msgspec
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sextant.config import Limits
from sextant.control.directory import Directory, Principal
from sextant.core.metrics import (
    MetricKind,
    PointBatch,
    Temporality,
    check_point_time,
    check_series,
    normalize_tags,
    series_id,
)
from sextant.core.timeutil import accepted_times, now_ms
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply
from sextant.edge.requests import request_id
from sextant.faces.datadog._points import parse_objects, parse_pairs, translate_known
from sextant.faces.datadog.auth import API_KEY_HEADER, AuthFailure, require_api_key
from sextant.faces.datadog.errors import APIErrorResponse, api_error
from sextant.ingest.writer import GroupCommitWriter, submit
from sextant.storage.backend import Backend

log = logging.getLogger("sextant.datadog")

SERIES_V2_PATH = "/api/v2/series"
SERIES_V1_PATH = "/api/v1/series"
DISTRIBUTION_PATH = "/api/v1/distribution_points"
SCOPE = "metrics_write"


class InvalidSeries(ValueError):
    """A request the intake refuses; the message says where and why."""


# --- request shapes ---------------------------------------------------------------------------------------
# Optional fields also take null: hand-written senders (a Go struct without omitempty) send it for "none".
# gc=False: these hold no reference cycles, and a large payload decodes to many thousands of them.


class MetricPoint(msgspec.Struct, gc=False):
    """A v2 point: time in epoch seconds and a finite value."""

    timestamp: int
    value: float


class MetricResource(msgspec.Struct, gc=False, frozen=True):
    """A resource the series is about; a `host` resource is the series' host."""

    name: str
    type: str


class MetricOrigin(msgspec.Struct, gc=False):
    metric_type: int | None = None
    product: int | None = None
    service: int | None = None


class MetricSeriesMetadata(msgspec.Struct, gc=False):
    origin: MetricOrigin | None = None


class MetricSeries(msgspec.Struct, gc=False):
    """A v2 series. `type`: 0 unspecified (stored as a gauge), 1 count, 2 rate, 3 gauge; `interval` in
    seconds, for counts and rates."""

    metric: str
    points: list[MetricPoint]
    type: Literal[0, 1, 2, 3] | None = None
    interval: int | None = None
    unit: str | None = None
    tags: list[str] | None = None
    resources: list[MetricResource] | None = None
    source_type_name: str | None = None
    metadata: MetricSeriesMetadata | None = None


class MetricPayload(msgspec.Struct, gc=False):
    """Body of `POST /api/v2/series`."""

    series: list[MetricSeries]


class Series(msgspec.Struct, gc=False):
    """A v1 series: points are `[epoch seconds, value]`; `interval` in seconds, for counts and rates."""

    metric: str
    points: list[tuple[float, float]]
    type: Literal["", "gauge", "rate", "count"] | None = None
    interval: int | None = None
    host: str | None = None
    tags: list[str] | None = None


class MetricsPayload(msgspec.Struct, gc=False):
    """Body of `POST /api/v1/series`."""

    series: list[Series]


class DistributionPointsSeries(msgspec.Struct, gc=False):
    """Points are `[epoch seconds, [value, ...]]`: every raw value of the interval."""

    metric: str
    points: list[tuple[float, list[float]]]
    host: str | None = None
    tags: list[str] | None = None
    type: Literal["distribution"] | None = None


class DistributionPointsPayload(msgspec.Struct, gc=False):
    """Body of `POST /api/v1/distribution_points`."""

    series: list[DistributionPointsSeries]


# What the intakes decode: the documented shapes above, with each series' points kept as raw JSON for the
# native parser (sextant/faces/datadog/_points.c). Series it cannot take are decoded with the shapes above.


class _RawPointsSeries(MetricSeries, gc=False):
    points: msgspec.Raw  # type: ignore[assignment]


class _RawPointsPayload(msgspec.Struct, gc=False):
    series: list[_RawPointsSeries]


class _RawPointsSeriesV1(Series, gc=False):
    points: msgspec.Raw  # type: ignore[assignment]


class _RawPointsPayloadV1(msgspec.Struct, gc=False):
    series: list[_RawPointsSeriesV1]


class IntakePayloadAccepted(msgspec.Struct):
    """What `POST /api/v2/series` answers: always an empty list (a refusal is a 4xx)."""

    errors: list[str]


class IntakeStatusAccepted(msgspec.Struct):
    """What the v1 intakes answer: `{"status": "ok"}`."""

    status: str


# --- translation ------------------------------------------------------------------------------------------

_P = TypeVar("_P", _RawPointsPayload, _RawPointsPayloadV1, DistributionPointsPayload)
# Body, organization and the time of the request -> the batch to write.
_Translator = Callable[[bytes, int, int], PointBatch]

_V2_KINDS: dict[int | None, tuple[MetricKind, Temporality | None]] = {
    None: (MetricKind.GAUGE, None),
    0: (MetricKind.GAUGE, None),
    1: (MetricKind.COUNT, Temporality.DELTA),
    2: (MetricKind.RATE, None),
    3: (MetricKind.GAUGE, None),
}
_K = TypeVar("_K")
_V1_KINDS: dict[str | None, tuple[MetricKind, Temporality | None]] = {
    None: (MetricKind.GAUGE, None),
    "": (MetricKind.GAUGE, None),
    "gauge": (MetricKind.GAUGE, None),
    "count": (MetricKind.COUNT, Temporality.DELTA),
    "rate": (MetricKind.RATE, None),
}


# What identifies a series as sent, before its tags are put together: the name, the host or the resources,
# and the tags as listed. Cheap to build (no string formatting), so the cache is consulted with it.
SeriesKey = tuple[str, object, tuple[str, ...]]


# What the native translation needs of a series type: the kind's and the temporality's stored names, and
# whether it is a gauge (which has no interval).
_NativeKinds = dict[object, tuple[str, str | None, bool]]


def _native_kinds(kinds: dict[_K, tuple[MetricKind, Temporality | None]]) -> _NativeKinds:
    return {
        key: (kind.value, None if temporality is None else temporality.value, kind is MetricKind.GAUGE)
        for key, (kind, temporality) in kinds.items()
    }


_V1_NATIVE_KINDS = _native_kinds(_V1_KINDS)
_V2_NATIVE_KINDS = _native_kinds(_V2_KINDS)


class SeriesIds:
    """Series seen recently: their key as sent -> (id, normalized tags). A sender repeats the same series
    every few seconds, so its tags are put together, sorted, checked and hashed once, not on every
    request."""

    MAX_ENTRIES = 200_000

    def __init__(self) -> None:
        self._known: dict[SeriesKey, tuple[int, tuple[str, ...]]] = {}

    @property
    def cache(self) -> dict[SeriesKey, tuple[int, tuple[str, ...]]]:
        """The dict itself, which the native translation reads."""
        return self._known

    def get(self, key: SeriesKey, tags: Callable[[], tuple[str, ...]]) -> tuple[int, tuple[str, ...]] | str:
        """The id and normalized tags of the series (`tags()` gives its tags when it is not known yet), or
        why it cannot be stored."""
        known = self._known.get(key)
        if known is not None:
            return known
        metric = key[0]
        normalized = normalize_tags(tags())
        why = check_series(metric, normalized)
        if why is not None:
            return why
        # Bounded: a sender making up new series forever must not grow it without end.
        if len(self._known) >= self.MAX_ENTRIES:
            self._known.clear()
        known = self._known[key] = (series_id(metric, normalized), normalized)
        return known


class _Translation:
    """One request's points going into one batch: the checks every series goes through."""

    __slots__ = ("batch", "ceiling", "floor", "ids", "now", "org_id")

    def __init__(self, org_id: int, now: int, ids: SeriesIds) -> None:
        self.batch = PointBatch()
        self.org_id = org_id
        self.now = now
        self.ids = ids
        self.floor, self.ceiling = accepted_times(now)

    def series(
        self, index: int, key: SeriesKey, tags: Callable[[], tuple[str, ...]]
    ) -> tuple[int, tuple[str, ...]]:
        """The series' id and normalized tags, once it is known to be valid."""
        known = self.ids.get(key, tags)
        if isinstance(known, str):
            raise InvalidSeries(f"series[{index}]: {known}")
        return known

    def native(self, series: Sequence[object], start: int, version: int, kinds: _NativeKinds) -> int:
        """Translate series from `start` on natively, as far as they are known series of the common shape
        (`_points.translate_known`); the index of the first one left to Python."""
        runs = self.batch.parts()[1]
        return translate_known(
            series,
            start,
            version,
            self.ids.cache,
            kinds,
            self.org_id,
            runs.headers,
            self.batch.series,
            runs.times_ms,
            runs.values,
            self.floor,
            self.ceiling,
        )

    def register(self, metric: str, known: tuple[int, tuple[str, ...]]) -> None:
        """Once a series has points in the batch (a series is stored with its first point, never alone)."""
        self.batch.register_series(self.org_id, known[0], metric, known[1])

    def check_times(self, index: int, times_ms: list[int], seconds: Sequence[float]) -> None:
        # min/max over the list instead of a check per point; the loop only runs to name a bad point.
        if times_ms and (min(times_ms) < self.floor or max(times_ms) > self.ceiling):
            for k, time_ms in enumerate(times_ms):
                why = check_point_time(time_ms, self.now)
                if why is not None:
                    raise InvalidSeries(
                        f"series[{index}].points[{k}].timestamp: {seconds[k]} (epoch seconds) {why}"
                    )

    def interval_ms(self, index: int, kind: MetricKind, interval: int | None) -> int | None:
        if interval is None:
            return None
        if interval < 0:
            raise InvalidSeries(f"series[{index}].interval: must be a number of seconds >= 0, not {interval}")
        # A gauge has no interval; 0 is what several senders put for "not given".
        return interval * 1000 if interval and kind is not MetricKind.GAUGE else None


def _host_tags(host: str | None, tags: list[str] | None) -> tuple[str, ...]:
    # An empty host is what senders without a host put in the field: no host tag, as when it is absent.
    listed = tags or ()
    return (*listed, f"host:{host}") if host else tuple(listed)


def _resource_tags(index: int, series: MetricSeries) -> tuple[str, ...]:
    tags = series.tags or ()
    if not series.resources:
        return tuple(tags)
    for j, resource in enumerate(series.resources):
        if not resource.name or not resource.type:
            raise InvalidSeries(f"series[{index}].resources[{j}]: name and type must be non-empty strings")
    return (*tags, *[f"{r.type}:{r.name}" for r in series.resources])


_decode_v2_points = msgspec.json.Decoder(list[MetricPoint]).decode
_decode_v1_points = msgspec.json.Decoder(list[tuple[float, float]]).decode


def _raw_points_error(index: int, message: str) -> InvalidSeries:
    return InvalidSeries(
        f"Invalid payload: {_located(message.replace('`$', f'`$.series[{index}].points', 1))}"
    )


def _v1_times(index: int, seconds: Sequence[float]) -> list[int]:
    """Epoch seconds (v1 allows a fraction) as milliseconds, rounded so that 1700000000.123 is
    1700000000123, not ...122."""
    try:
        return [round(t * 1000) for t in seconds]
    except OverflowError:
        k = next(k for k, t in enumerate(seconds) if not math.isfinite(t * 1000))
        raise InvalidSeries(
            f"series[{index}].points[{k}].timestamp: {seconds[k]} is not a time in epoch seconds"
        ) from None


@dataclass(frozen=True)
class _Shape:
    """What differs between the v1 and v2 series shapes, for the one translation of both."""

    version: int
    kinds: Mapping[Any, tuple[MetricKind, Temporality | None]]
    native_kinds: _NativeKinds
    parse: Callable[..., int]
    key: Callable[[Any], SeriesKey]
    tags: Callable[[int, Any], tuple[str, ...]]
    unit: Callable[[Any], str | None]
    # The points decoded as documented (raising msgspec's error): times in ms, the seconds as sent, values.
    decode: Callable[[int, msgspec.Raw], tuple[list[int], Sequence[float], list[float]]]


def _decode_v2(index: int, raw: msgspec.Raw) -> tuple[list[int], Sequence[float], list[float]]:
    points = _decode_v2_points(raw)
    seconds = [p.timestamp for p in points]
    return [t * 1000 for t in seconds], seconds, [p.value for p in points]


def _decode_v1(index: int, raw: msgspec.Raw) -> tuple[list[int], Sequence[float], list[float]]:
    points = _decode_v1_points(raw)
    if not points:
        return [], [], []
    seconds, values = zip(*points, strict=True)
    return _v1_times(index, seconds), seconds, list(values)


_V2_SHAPE = _Shape(
    version=2,
    kinds=_V2_KINDS,
    native_kinds=_V2_NATIVE_KINDS,
    parse=parse_objects,
    key=lambda s: (s.metric, tuple(s.resources) if s.resources else None, tuple(s.tags or ())),
    tags=_resource_tags,
    unit=lambda s: s.unit,
    decode=_decode_v2,
)
_V1_SHAPE = _Shape(
    version=1,
    kinds=_V1_KINDS,
    native_kinds=_V1_NATIVE_KINDS,
    parse=parse_pairs,
    key=lambda s: (s.metric, s.host, tuple(s.tags or ())),
    tags=lambda _, s: _host_tags(s.host, s.tags),
    unit=lambda _: None,
    decode=_decode_v1,
)


def _translate(series: Sequence[Any], run: _Translation, shape: _Shape) -> PointBatch:
    i = run.native(series, 0, shape.version, shape.native_kinds)
    while i < len(series):
        _translate_one(i, series[i], run, shape)
        i = run.native(series, i + 1, shape.version, shape.native_kinds)
    return run.batch


def _translate_v2(payload: _RawPointsPayload, run: _Translation) -> PointBatch:
    return _translate(payload.series, run, _V2_SHAPE)


def _translate_v1(payload: _RawPointsPayloadV1, run: _Translation) -> PointBatch:
    return _translate(payload.series, run, _V1_SHAPE)


def _translate_one(i: int, series: Any, run: _Translation, shape: _Shape) -> None:
    """A series the native translation left: not seen yet, or not of the common shape."""
    batch = run.batch
    kind, temporality = shape.kinds[series.type]
    raw = series.points
    interval_ms = run.interval_ms(i, kind, series.interval)
    known = run.series(i, shape.key(series), lambda: shape.tags(i, series))
    unit = shape.unit(series)
    filled = batch.add_filled(
        shape.parse,
        (raw, run.floor, run.ceiling),
        org_id=run.org_id,
        series_id=known[0],
        kind=kind,
        interval_ms=interval_ms,
        temporality=temporality,
        unit=unit,
    )
    if filled < 0:
        # Not for the native parser: decode the points as documented, which also says what is wrong.
        try:
            times, seconds, values = shape.decode(i, raw)
        except msgspec.ValidationError as exc:
            raise _raw_points_error(i, str(exc)) from None
        if not times:
            return
        run.check_times(i, times, seconds)
        batch.add_values(
            org_id=run.org_id,
            series_id=known[0],
            kind=kind,
            times_ms=times,
            values=values,
            interval_ms=interval_ms,
            temporality=temporality,
            unit=unit,
        )
    elif filled == 0:
        return
    run.register(series.metric, known)


def _translate_distributions(payload: DistributionPointsPayload, run: _Translation) -> PointBatch:
    batch = run.batch
    for i, series in enumerate(payload.series):
        known = run.series(i, _V1_SHAPE.key(series), lambda: _V1_SHAPE.tags(i, series))  # noqa: B023 - called at once
        sid = known[0]
        if series.points:
            run.register(series.metric, known)
        seconds = [t for t, _ in series.points]
        times = _v1_times(i, seconds)
        run.check_times(i, times, seconds)
        for k, (time_ms, (_, values)) in enumerate(zip(times, series.points, strict=True)):
            if not values:
                raise InvalidSeries(f"series[{i}].points[{k}]: the list of values is empty")
            batch.add(
                org_id=run.org_id,
                series_id=sid,
                time_ms=time_ms,
                kind=MetricKind.DISTRIBUTION,
                value=sum(values),
                count=len(values),
                min=min(values),
                max=max(values),
                samples=values,
            )
    return batch


def _decoder(
    shape: type[_P], translate: Callable[[_P, _Translation], PointBatch], ids: SeriesIds
) -> _Translator:
    decode = msgspec.json.Decoder(shape).decode

    def run(body: bytes, org_id: int, now: int) -> PointBatch:
        try:
            payload = decode(body)
        except msgspec.ValidationError as exc:
            raise InvalidSeries(f"Invalid payload: {_located(str(exc))}") from None
        except msgspec.DecodeError as exc:
            raise InvalidSeries(f"Malformed payload: body is not valid JSON ({exc})") from None
        except RecursionError:
            raise InvalidSeries("Malformed payload: JSON is nested too deeply") from None
        return translate(payload, _Translation(org_id, now, ids))

    return run


def _located(message: str) -> str:
    """msgspec's "Expected `float`, got `str` - at `$.series[0].points[1].value`" as
    "series[0].points[1].value: Expected `float`, got `str`"."""
    what, found, where = message.rpartition(" - at `")
    if not found:
        return f"body: {message}"
    path = where.rstrip("`").removeprefix("$").removeprefix(".")
    return f"{path or 'body'}: {what}"


# --- the endpoints ----------------------------------------------------------------------------------------


def _accepted(body: bytes) -> tuple[Message, Message]:
    start: Message = {
        "type": "http.response.start",
        "status": 202,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, {"type": "http.response.body", "body": body}


@dataclass(frozen=True)
class _Route:
    path: str
    translate: _Translator
    max_bytes: int
    max_decoded: int
    allow_zstd: bool
    # The v1 intakes also take the API key as `?api_key=`, as Datadog's always have.
    key_in_query: bool
    accepted: tuple[Message, Message]


class DatadogMetricsIntake:
    def __init__(
        self, directory: Directory, writer: GroupCommitWriter, store: Backend, limits: Limits
    ) -> None:
        self._directory = directory
        self._writer = writer
        self._store = store
        self._limits = limits

    def endpoints(self) -> list[Endpoint]:
        limits = self._limits
        ids = SeriesIds()
        v1_status = msgspec.json.encode(IntakeStatusAccepted("ok"))
        routes = [
            (
                _Route(
                    SERIES_V2_PATH,
                    _decoder(_RawPointsPayload, _translate_v2, ids),
                    limits.series_v2_body_bytes,
                    limits.series_v2_decoded_bytes,
                    allow_zstd=True,
                    key_in_query=False,
                    accepted=_accepted(msgspec.json.encode(IntakePayloadAccepted([]))),
                ),
                "Submit metrics (gauges, counts, rates)",
                MetricPayload,
                IntakePayloadAccepted,
            ),
            (
                _Route(
                    SERIES_V1_PATH,
                    _decoder(_RawPointsPayloadV1, _translate_v1, ids),
                    limits.series_v1_body_bytes,
                    limits.series_v1_decoded_bytes,
                    allow_zstd=False,
                    key_in_query=True,
                    accepted=_accepted(v1_status),
                ),
                "Submit metrics, v1 format (points as [timestamp, value])",
                MetricsPayload,
                IntakeStatusAccepted,
            ),
            (
                # Datadog documents no size limit for distribution points; they take the v1 series limits.
                _Route(
                    DISTRIBUTION_PATH,
                    _decoder(DistributionPointsPayload, _translate_distributions, ids),
                    limits.series_v1_body_bytes,
                    limits.series_v1_decoded_bytes,
                    allow_zstd=False,
                    key_in_query=True,
                    accepted=_accepted(v1_status),
                ),
                "Submit distribution points (every raw value of each interval)",
                DistributionPointsPayload,
                IntakeStatusAccepted,
            ),
        ]
        error = Reply("Error", APIErrorResponse)
        return [
            Endpoint(
                method="POST",
                path=route.path,
                asgi=self._handler(route),
                summary=summary,
                tag="Datadog metrics",
                request=request,
                responses={
                    202: Reply("Accepted: durable and visible to queries within one second", accepted),
                    400: error,
                    401: error,
                    403: error,
                    413: error,
                    415: error,
                    503: error,
                },
                auth_headers=("DD-API-KEY",),
            )
            for route, summary, request, accepted in routes
        ]

    def _handler(self, route: _Route) -> ASGIApp:
        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            """A bare ASGI handler, as the events intake: no framework objects on the hot path."""
            try:
                headers = Headers(scope=scope)
                caller = self._caller(headers, scope, route.key_in_query)
                if isinstance(caller, Response):
                    refusal: Response | None = caller
                else:
                    body = await read_body(
                        receive,
                        headers,
                        max_bytes=route.max_bytes,
                        max_decoded=route.max_decoded,
                        allow_zstd=route.allow_zstd,
                    )
                    refusal = await self._accept(route.translate, body, caller.org_id)
            except ClientDisconnect:
                return
            except BodyError as exc:
                refusal = api_error(exc.status, str(exc))
            except Exception:
                rid = request_id(scope)
                log.exception("unexpected failure serving POST %s (request id %s)", route.path, rid)
                refusal = api_error(500, f"Internal Server Error (request id {rid})")
            if refusal is None:
                start, accepted = route.accepted
                await send(start)
                await send(accepted)
            else:
                await refusal(scope, receive, send)

        return asgi

    def _caller(self, headers: Headers, scope: Scope, key_in_query: bool) -> Principal | Response:
        if key_in_query and API_KEY_HEADER not in headers:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("api_key")
            if query:
                headers = Headers(raw=[*scope["headers"], (API_KEY_HEADER.encode(), query[0].encode())])
        try:
            return require_api_key(headers, self._directory, SCOPE)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)

    async def _accept(self, translate: _Translator, body: bytes, org_id: int) -> Response | None:
        """Store the points, returning once they are durable; or the refusal to answer."""
        try:
            batch = translate(body, org_id, now_ms())
        except InvalidSeries as exc:
            return api_error(400, str(exc))
        busy = await submit(self._writer, batch, "points")
        if busy is not None:
            return api_error(503, busy.message, headers=busy.headers)
        return None
