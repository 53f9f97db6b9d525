"""A storage interface for equipment telemetry, so a site can keep it in the hub database or in InfluxDB.

Series are named by their key (site, edge, device, point) rather than a database id, which only the
SQL store has. Both stores aggregate good samples only and answer with the same Bucket and Latest types.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, Engine, select, tuple_

from cloud.timeseries.bulk import SeriesIds, SeriesKey, write_samples
from cloud.timeseries.models import Series
from cloud.timeseries.query import DEFAULT_TZ, Bucket, BucketSize, Latest, bucket_edges, buckets, empty_bucket, latest
from cloud.timeseries.rollup import mark_dirty, series_hours
from protocols.quantities import PointKind


@dataclass(frozen=True, slots=True)
class Reading:
    key: SeriesKey
    quantity: str
    ts: int
    """Epoch milliseconds."""
    value: float
    quality: int = 0
    seq: int = 0
    """Tells apart two readings of one series in the same millisecond (SQL only: InfluxDB keeps the last)."""


class TimeSeriesStore(Protocol):
    def write(self, points: Sequence[Reading]) -> None:
        """Store new readings (re-delivered ones are for ingest to drop, as it does for samples)."""
        ...

    def buckets(
        self, key: SeriesKey, kind: PointKind, start_ms: int, end_ms: int, bucket: BucketSize, tz: str = DEFAULT_TZ
    ) -> list[Bucket]:
        """Every calendar bucket meeting [start_ms, end_ms), as query.buckets defines them."""
        ...

    def latest(self, keys: Iterable[SeriesKey]) -> dict[SeriesKey, Latest]:
        """The newest reading of each series that has one."""
        ...


class SqlStore:
    """The hub database: samples plus hourly rollups; reads are exact even before rollups are refreshed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._ids = SeriesIds()

    def write(self, points: Sequence[Reading]) -> None:
        if not points:
            return
        try:
            with self._engine.begin() as conn:
                ids = self._ids.resolve(conn, {p.key: p.quantity for p in points})
                rows = [(ids[p.key], p.ts, p.seq, p.value, p.quality) for p in points]
                write_samples(conn, rows)
                mark_dirty(conn, series_hours(rows))
        except Exception:
            self._ids.forget()
            raise

    def buckets(
        self, key: SeriesKey, kind: PointKind, start_ms: int, end_ms: int, bucket: BucketSize, tz: str = DEFAULT_TZ
    ) -> list[Bucket]:
        with self._engine.connect() as conn:
            sid = _series_ids(conn, [key]).get(key)
            if sid is None:
                counter = kind is PointKind.COUNTER
                return [empty_bucket(edge, counter) for edge in bucket_edges(start_ms, end_ms, bucket, tz)[:-1]]
            return buckets(conn, sid, kind, start_ms, end_ms, bucket, tz)

    def latest(self, keys: Iterable[SeriesKey]) -> dict[SeriesKey, Latest]:
        wanted = list(keys)
        if not wanted:
            return {}
        with self._engine.connect() as conn:
            ids = _series_ids(conn, wanted)
            newest = latest(conn, ids.values())
        return {key: newest[sid] for key, sid in ids.items() if sid in newest}


def _series_ids(conn: Connection, keys: Sequence[SeriesKey]) -> dict[SeriesKey, int]:
    """Ids of the series that exist (reads never create one)."""
    s = Series
    query = select(s.id, s.site, s.edge, s.device, s.point).where(tuple_(s.site, s.edge, s.device, s.point).in_(keys))
    return {(site, edge, device, point): sid for sid, site, edge, device, point in conn.execute(query)}
