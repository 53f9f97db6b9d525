"""Readings through the registry: latest values, calendar buckets and consumption of meters, equipment and
series, each reached through an object already checked against the user's scope.

Meter readings (what bills are made of) are read from the hub database with cloud.timeseries.query;
equipment telemetry goes through the configured TimeSeriesStore (the hub database or InfluxDB).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import AfterValidator, AwareDatetime, BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import (
    STAFF,
    EquipmentDep,
    MeterDep,
    ScopeDep,
    SeriesDep,
    SessionDep,
    SiteDep,
    UnitDep,
    require_roles,
)
from cloud.registry.models import Meter
from cloud.registry.services import MAIN_QUANTITY, MappedSeries, mapped_series
from cloud.timeseries import query
from cloud.timeseries.query import DEFAULT_TZ, BucketSize
from cloud.timeseries.store import TimeSeriesStore
from protocols.quantities import PointKind

router = APIRouter()


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)") from None
    return name


Start = Annotated[AwareDatetime, Query(description="Inclusive, ISO 8601 with an offset")]
End = Annotated[AwareDatetime, Query(description="Exclusive, ISO 8601 with an offset")]
Zone = Annotated[str, AfterValidator(_zone), Query(description="Calendar of hour, day and month buckets")]


class PointValue(BaseModel):
    series_id: int | None
    """None until the edge has sent a reading of the point."""
    device: str
    point: str
    quantity: str
    ts: datetime | None
    value: float | None
    quality: int | None
    """0 good, 1 out of range."""


class MeterReading(BaseModel):
    meter_id: int
    code: str
    unit_id: int | None
    quantity: str
    ts: datetime | None
    value: float | None


class BucketPublic(BaseModel):
    start: datetime
    count: int
    min: float | None
    avg: float | None
    max: float | None
    consumption: float | None
    """Counters: positive deltas ending in this bucket."""
    decreases: int
    """Counters: resets or glitches in this bucket (never billed)."""


class SeriesBuckets(BaseModel):
    series_id: int | None
    device: str
    point: str
    quantity: str
    bucket: BucketSize
    tz: str
    buckets: list[BucketPublic]


class ConsumptionPublic(BaseModel):
    meter_id: int
    code: str
    quantity: str
    start: datetime
    end: datetime
    value: float
    decreases: int
    start_value: float | None
    end_value: float | None
    estimated: bool
    """A reading was interpolated across a long gap or a reset, or lies outside the data."""


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _range(start: datetime, end: datetime) -> tuple[int, int]:
    if end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end must be after start")
    return _ms(start), _ms(end)


def _main(mapped: list[MappedSeries], meter: Meter, point: str | None = None) -> MappedSeries:
    """The named point of the meter, or its billing counter."""
    quantity = MAIN_QUANTITY[meter.kind.value]
    for m in mapped:
        if (m.key[3] == point) if point is not None else (m.quantity == quantity):
            return m
    wanted = f"point {point}" if point is not None else f"a {quantity} point"
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"meter {meter.code} has no {wanted} mapped")


def _buckets(
    session: Session, m: MappedSeries, start: datetime, end: datetime, bucket: BucketSize, tz: str
) -> SeriesBuckets:
    start_ms, end_ms = _range(start, end)
    try:
        if m.series_id is None:
            counter = m.kind is PointKind.COUNTER
            rows = [query.empty_bucket(e, counter) for e in query.bucket_edges(start_ms, end_ms, bucket, tz)[:-1]]
        else:
            rows = query.buckets(session.connection(), m.series_id, m.kind, start_ms, end_ms, bucket, tz)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _series_buckets(m, bucket, tz, rows)


def _series_buckets(m: MappedSeries, bucket: BucketSize, tz: str, rows: list[query.Bucket]) -> SeriesBuckets:
    return SeriesBuckets(
        series_id=m.series_id, device=m.key[2], point=m.key[3], quantity=m.quantity, bucket=bucket, tz=tz,
        buckets=[BucketPublic(start=datetime.fromtimestamp(b.start_ms / 1000, UTC), count=b.count, min=b.min,
                              avg=b.avg, max=b.max, consumption=b.consumption, decreases=b.decreases) for b in rows],
    )  # fmt: skip


def _consumption(session: Session, meter: Meter, start: datetime, end: datetime) -> ConsumptionPublic:
    m = _main(mapped_series(session, meter_ids=[meter.id]), meter)
    start_ms, end_ms = _range(start, end)
    if m.series_id is None:
        c = query.Consumption(0.0, 0, None, None, True)
    else:
        c = query.consumption(session.connection(), m.series_id, start_ms, end_ms)
    return ConsumptionPublic(
        meter_id=meter.id, code=meter.code, quantity=m.quantity, start=start, end=end, value=c.value,
        decreases=c.decreases, start_value=c.start_value, end_value=c.end_value, estimated=c.estimated,
    )  # fmt: skip


def _point_values(mapped: list[MappedSeries], latest: dict[int, query.Latest]) -> list[PointValue]:
    out = []
    for m in mapped:
        last = latest.get(m.series_id) if m.series_id is not None else None
        out.append(PointValue(
            series_id=m.series_id, device=m.key[2], point=m.key[3], quantity=m.quantity,
            ts=_time(last.ts) if last else None, value=last.value if last else None,
            quality=last.quality if last else None,
        ))  # fmt: skip
    return out


# Meters


@router.get("/meters/{meter_id}/latest", tags=["readings"])
def meter_latest(meter: MeterDep, session: SessionDep) -> list[PointValue]:
    """The newest reading of every point mapped to the meter."""
    mapped = mapped_series(session, meter_ids=[meter.id])
    latest = query.latest(session.connection(), [m.series_id for m in mapped if m.series_id is not None])
    return _point_values(mapped, latest)


@router.get("/meters/{meter_id}/buckets", tags=["readings"])
def meter_buckets(
    meter: MeterDep,
    session: SessionDep,
    start: Start,
    end: End,
    bucket: BucketSize = "hour",
    point: Annotated[str | None, Query(description="Default: the meter's billing counter")] = None,
    tz: Zone = DEFAULT_TZ,
) -> SeriesBuckets:
    m = _main(mapped_series(session, meter_ids=[meter.id]), meter, point)
    return _buckets(session, m, start, end, bucket, tz)


@router.get("/meters/{meter_id}/consumption", tags=["readings"])
def meter_consumption(meter: MeterDep, session: SessionDep, start: Start, end: End) -> ConsumptionPublic:
    """Consumption by the billing counter over [start, end): resets inside are never billed."""
    return _consumption(session, meter, start, end)


@router.get("/units/{unit_id}/consumption", tags=["readings"])
def unit_consumption(
    unit: UnitDep, session: SessionDep, scope: ScopeDep, start: Start, end: End
) -> list[ConsumptionPublic]:
    """Consumption of each of the unit's own meters (electricity, water) over [start, end)."""
    meters = session.scalars(select(Meter).where(Meter.unit_id == unit.id, scope.where(Meter)).order_by(Meter.code))
    return [_consumption(session, m, start, end) for m in meters]


@router.get("/sites/{site_id}/latest", tags=["readings"])
def site_latest(site: SiteDep, session: SessionDep, scope: ScopeDep) -> list[MeterReading]:
    """The newest billing-counter reading of every meter of the site the user may see."""
    meters = {m.id: m for m in session.scalars(select(Meter).where(Meter.site_id == site.id, scope.where(Meter)))}
    mains = {}
    for m in mapped_series(session, meter_ids=list(meters)):
        meter = meters[m.meter_id] if m.meter_id is not None else None
        if meter is not None and m.quantity == MAIN_QUANTITY[meter.kind.value] and meter.id not in mains:
            mains[meter.id] = m
    latest = query.latest(session.connection(), [m.series_id for m in mains.values() if m.series_id is not None])
    out = []
    for meter in sorted(meters.values(), key=lambda x: x.code):
        main = mains.get(meter.id)
        last = latest.get(main.series_id) if main is not None and main.series_id is not None else None
        out.append(MeterReading(
            meter_id=meter.id, code=meter.code, unit_id=meter.unit_id, quantity=MAIN_QUANTITY[meter.kind.value],
            ts=_time(last.ts) if last else None, value=last.value if last else None,
        ))  # fmt: skip
    return out


# Series


@router.get("/series/{series_id}/buckets", tags=["readings"])
def series_buckets(
    series: SeriesDep, session: SessionDep, start: Start, end: End, bucket: BucketSize = "hour", tz: Zone = DEFAULT_TZ
) -> SeriesBuckets:
    """Any stored series by id; counter or gauge as its device profile says (gauge when unmapped)."""
    mapped = mapped_series(session, series_id=series.id)
    key = (series.site, series.edge, series.device, series.point)
    m = mapped[0] if mapped else MappedSeries(series.id, key, series.quantity, PointKind.GAUGE, None, None)
    return _buckets(session, m, start, end, bucket, tz)


# Equipment (through the telemetry store)


def get_telemetry(request: Request) -> TimeSeriesStore:
    store: TimeSeriesStore = request.app.state.telemetry
    return store


TelemetryDep = Annotated[TimeSeriesStore, Depends(get_telemetry)]


@router.get("/equipment/{equipment_id}/latest", tags=["readings"], dependencies=[Depends(require_roles(*STAFF))])
def equipment_latest(equipment: EquipmentDep, session: SessionDep, store: TelemetryDep) -> list[PointValue]:
    mapped = mapped_series(session, equipment_id=equipment.id)
    newest = store.latest([m.key for m in mapped])
    return [
        PointValue(
            series_id=m.series_id,
            device=m.key[2],
            point=m.key[3],
            quantity=m.quantity,
            ts=_time(newest[m.key].ts) if m.key in newest else None,
            value=newest[m.key].value if m.key in newest else None,
            quality=newest[m.key].quality if m.key in newest else None,
        )  # fmt: skip
        for m in mapped
    ]


@router.get("/equipment/{equipment_id}/buckets", tags=["readings"], dependencies=[Depends(require_roles(*STAFF))])
def equipment_buckets(
    equipment: EquipmentDep,
    session: SessionDep,
    store: TelemetryDep,
    point: str,
    start: Start,
    end: End,
    bucket: BucketSize = "hour",
    tz: Zone = DEFAULT_TZ,
) -> SeriesBuckets:
    m = next((m for m in mapped_series(session, equipment_id=equipment.id) if m.key[3] == point), None)
    if m is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"equipment {equipment.code} has no point {point} mapped")
    start_ms, end_ms = _range(start, end)
    try:
        rows = store.buckets(m.key, m.kind, start_ms, end_ms, bucket, tz)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return _series_buckets(m, bucket, tz, rows)
