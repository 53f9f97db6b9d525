"""Range queries on one series: whole hours from rollups, the rest from raw samples.

A range is cut at calendar bucket boundaries; every UTC hour lying wholly inside one bucket (and not
marked dirty) is read from its rollup, the partial hours at the edges and dirty hours from raw samples.
So a year of one series is about 8,760 rollup rows, and answers are exact even before a refresh ran.

Only good samples (quality 0) enter aggregates and consumption; ``latest`` and ``raw`` return every
sample with its quality.

Counters: consumption is the sum of positive deltas between consecutive samples, the delta across a
bucket boundary belonging to the bucket of the later sample. A negative delta (meter reset, swap or
glitch) is never billed: it is counted in ``decreases`` so it can be flagged.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from operator import itemgetter
from typing import Literal, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, ScalarSelect, and_, or_, select
from sqlalchemy.orm import QueryableAttribute

from cloud.timeseries.models import DirtyHour, HourRollup, Sample, Series
from cloud.timeseries.rollup import HOUR_MS
from protocols.quantities import PointKind

BucketSize = Literal["15min", "hour", "day", "month"]
DEFAULT_TZ = "Asia/Shanghai"
QUARTER_MS = 900_000
MAX_15MIN_RANGE_MS = 31 * 24 * HOUR_MS
"""15-minute buckets are computed from raw samples: a month of 1-minute data is 44,640 rows."""
DEFAULT_MAX_GAP_MS = HOUR_MS
RANGES_PER_QUERY = 100
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Bucket:
    start_ms: int
    """Calendar start of the bucket (the first one may begin before the queried range)."""
    count: int
    min: float | None
    avg: float | None
    max: float | None
    consumption: float | None
    """Counters only: positive deltas ending in this bucket."""
    decreases: int
    """Counters only: negative deltas ending in this bucket (not billed)."""


@dataclass(frozen=True, slots=True)
class Consumption:
    """A counter's consumption between two instants, for billing."""

    value: float
    """Positive deltas along: reading at start, samples in [start, end), reading at end."""
    decreases: int
    start_value: float | None
    end_value: float | None
    """Meter readings at the two instants, interpolated linearly between the surrounding samples."""
    estimated: bool
    """A reading lies outside the data, across a gap longer than max_gap_ms, or across a decrease."""


@dataclass(frozen=True, slots=True)
class Latest:
    ts: int
    value: float
    quality: int


@dataclass(frozen=True, slots=True)
class RawSample:
    ts: int
    value: float
    quality: int


class _Run(NamedTuple):
    """A stretch of consecutive good samples inside one bucket: a rollup hour or a single raw sample."""

    first_ts: int
    first_value: float
    last_value: float
    samples: int
    min: float
    max: float
    sum: float
    increase: float
    decreases: int


def empty_bucket(start_ms: int, counter: bool) -> Bucket:
    return Bucket(start_ms, 0, None, None, None, 0.0 if counter else None, 0)


def bucket_edges(start_ms: int, end_ms: int, bucket: BucketSize, tz: str = DEFAULT_TZ) -> list[int]:
    """Boundaries of the calendar buckets meeting [start_ms, end_ms): edges[0] <= start_ms, edges[-1] >= end_ms.

    15-minute buckets are UTC quarter hours (every zone's offset is a whole number of quarter hours) over
    at most MAX_15MIN_RANGE_MS; hours, days and months follow the local calendar of ``tz``.
    """
    if end_ms <= start_ms:
        raise ValueError(f"empty range: end {end_ms} is not after start {start_ms}")
    if bucket == "15min":
        if end_ms - start_ms > MAX_15MIN_RANGE_MS:
            raise ValueError(f"15min buckets span at most 31 days; asked for {(end_ms - start_ms) / 86_400_000:.1f}")
        first = start_ms - start_ms % QUARTER_MS
        return list(range(first, end_ms + QUARTER_MS, QUARTER_MS))
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(start_ms / 1000, zone)
    edges: list[int] = []
    if bucket == "month":
        year, month = local.year, local.month
        while not edges or edges[-1] < end_ms:
            edges.append(_ms(datetime(year, month, 1, tzinfo=zone)))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return edges
    day = local.date()
    while not edges or edges[-1] < end_ms:
        edges.append(_ms(datetime.combine(day, time(), zone)))
        day += timedelta(days=1)
    if bucket == "day":
        return edges
    hours = [h for a, b in zip(edges, edges[1:], strict=False) for h in range(a, b, HOUR_MS)] + [edges[-1]]
    return hours[bisect_right(hours, start_ms) - 1 : bisect_left(hours, end_ms) + 1]


def buckets(
    conn: Connection,
    series_id: int,
    kind: PointKind,
    start_ms: int,
    end_ms: int,
    bucket: BucketSize,
    tz: str = DEFAULT_TZ,
) -> list[Bucket]:
    """Every bucket meeting [start_ms, end_ms), empty ones included, in time order."""
    edges = bucket_edges(start_ms, end_ms, bucket, tz)
    counter = kind is PointKind.COUNTER
    runs = _runs(conn, series_id, start_ms, end_ms, edges)
    previous = _last_before(conn, series_id, start_ms) if counter else None
    n = len(edges) - 1
    count, total, increase, decreases = [0] * n, [0.0] * n, [0.0] * n, [0] * n
    low, high = [math.inf] * n, [-math.inf] * n
    i = 0
    for run, inc, dec in _with_steps(runs, None if previous is None else previous[1]):
        while run.first_ts >= edges[i + 1]:
            i += 1
        count[i] += run.samples
        total[i] += run.sum
        low[i] = min(low[i], run.min)
        high[i] = max(high[i], run.max)
        if counter:
            increase[i] += inc
            decreases[i] += dec
    return [
        Bucket(edges[k], count[k], low[k], total[k] / count[k], high[k], increase[k] if counter else None, decreases[k])
        if count[k]
        else empty_bucket(edges[k], counter)
        for k in range(n)
    ]


def consumption(
    conn: Connection, series_id: int, start_ms: int, end_ms: int, max_gap_ms: int = DEFAULT_MAX_GAP_MS
) -> Consumption:
    """Consumption of a counter over [start_ms, end_ms).

    Returned: the positive deltas along the chain (reading at start, samples inside, reading at end), so
    a reset inside the period costs nothing instead of a huge negative or positive jump; the plain
    difference end_value - start_value is the same number whenever decreases is 0.
    """
    if end_ms <= start_ms:
        raise ValueError(f"empty range: end {end_ms} is not after start {start_ms}")
    start = _reading_at(conn, series_id, start_ms, max_gap_ms)
    end = _reading_at(conn, series_id, end_ms, max_gap_ms)
    if start is None or end is None:
        return Consumption(0.0, 0, None, None, True)
    total, decreases, last = 0.0, 0, start[0]
    for run, inc, dec in _with_steps(_runs(conn, series_id, start_ms, end_ms, [start_ms, end_ms]), last):
        total, decreases, last = total + inc, decreases + dec, run.last_value
    inc, dec = _step(last, end[0])
    return Consumption(total + inc, decreases + dec, start[0], end[0], start[1] or end[1])


def latest(conn: Connection, series_ids: Iterable[int]) -> dict[int, Latest]:
    """The newest sample of each series (any quality); series without samples are left out."""
    ids = list(series_ids)
    if not ids:
        return {}

    def newest(column: QueryableAttribute[T]) -> ScalarSelect[T]:
        query = select(column).where(Sample.series_id == Series.id)
        return query.order_by(Sample.ts.desc(), Sample.seq.desc()).limit(1).scalar_subquery()

    query = select(Series.id, newest(Sample.ts), newest(Sample.value), newest(Sample.quality))
    rows = conn.execute(query.where(Series.id.in_(ids)))
    return {sid: Latest(ts, value, quality) for sid, ts, value, quality in rows if ts is not None}


def raw(conn: Connection, series_id: int, start_ms: int, end_ms: int, limit: int = 10_000) -> list[RawSample]:
    """Samples in [start_ms, end_ms) of any quality, oldest first, at most ``limit``."""
    query = select(Sample.ts, Sample.value, Sample.quality).where(
        Sample.series_id == series_id, Sample.ts >= start_ms, Sample.ts < end_ms
    )
    rows = conn.execute(query.order_by(Sample.ts, Sample.seq).limit(limit))
    return [RawSample(ts, value, quality) for ts, value, quality in rows]


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _runs(conn: Connection, series_id: int, start_ms: int, end_ms: int, edges: Sequence[int]) -> list[_Run]:
    """The good samples in [start_ms, end_ms) as runs in time order, none straddling a bucket edge."""
    whole: list[int] = []
    ranges: list[tuple[int, int]] = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        lo, hi = max(lo, start_ms), min(hi, end_ms)
        first = -(-lo // HOUR_MS) * HOUR_MS
        hours = range(first, hi - HOUR_MS + 1, HOUR_MS)
        if hours:
            whole.extend(hours)
            ranges += [(lo, first), (hours[-1] + HOUR_MS, hi)]
        else:
            ranges.append((lo, hi))
    if whole:
        dirty = set(
            conn.scalars(
                select(DirtyHour.hour_start).where(
                    DirtyHour.series_id == series_id, DirtyHour.hour_start.between(whole[0], whole[-1])
                )
            )
        )
        ranges += [(h, h + HOUR_MS) for h in whole if h in dirty]
        whole = [h for h in whole if h not in dirty]
    runs: list[_Run] = []
    if whole:
        wanted = set(whole)
        r = HourRollup
        hourly = select(r.hour_start, r.first_ts, r.first_value, r.last_value, r.count, r.min, r.max, r.sum,
                       r.increase, r.decreases)  # fmt: skip
        hourly = hourly.where(r.series_id == series_id, r.hour_start.between(whole[0], whole[-1]))
        for hour, *aggregates in conn.execute(hourly):
            if hour in wanted:
                runs.append(_Run(*aggregates))
    merged = _merge(ranges)
    for i in range(0, len(merged), RANGES_PER_QUERY):
        within = [and_(Sample.ts >= a, Sample.ts < b) for a, b in merged[i : i + RANGES_PER_QUERY]]
        query = select(Sample.ts, Sample.value).where(Sample.series_id == series_id, Sample.quality == 0, or_(*within))
        runs += (_Run(ts, v, v, 1, v, v, v, 0.0, 0) for ts, v in conn.execute(query.order_by(Sample.ts, Sample.seq)))
    runs.sort(key=itemgetter(0))  # stable: samples sharing a millisecond keep their seq order
    return runs


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(r for r in ranges if r[0] < r[1]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _step(before: float, after: float) -> tuple[float, int]:
    """(billed increase, flagged decrease) between two consecutive counter values."""
    return (after - before, 0) if after >= before else (0.0, 1)


def _with_steps(runs: Iterable[_Run], previous: float | None) -> Iterator[tuple[_Run, float, int]]:
    """Each run with its increase and decreases, counting the step from the value before it."""
    for run in runs:
        inc, dec = (0.0, 0) if previous is None else _step(previous, run.first_value)
        yield run, run.increase + inc, run.decreases + dec
        previous = run.last_value


def _last_before(conn: Connection, series_id: int, ts: int) -> tuple[int, float] | None:
    """The last good sample strictly before ``ts``."""
    query = select(Sample.ts, Sample.value).where(Sample.series_id == series_id, Sample.quality == 0, Sample.ts < ts)
    row = conn.execute(query.order_by(Sample.ts.desc(), Sample.seq.desc()).limit(1)).first()
    return None if row is None else (row[0], row[1])


def _first_from(conn: Connection, series_id: int, ts: int) -> tuple[int, float] | None:
    """The first good sample at or after ``ts``."""
    query = select(Sample.ts, Sample.value).where(Sample.series_id == series_id, Sample.quality == 0, Sample.ts >= ts)
    row = conn.execute(query.order_by(Sample.ts, Sample.seq).limit(1)).first()
    return None if row is None else (row[0], row[1])


def _reading_at(conn: Connection, series_id: int, ts: int, max_gap_ms: int) -> tuple[float, bool] | None:
    """(counter reading at ``ts``, estimated), or None when the series has no good sample at all."""
    before = _last_before(conn, series_id, ts + 1)
    if before is not None and before[0] == ts:
        return before[1], False
    after = _first_from(conn, series_id, ts)
    if before is None or after is None:
        known = before or after
        return None if known is None else (known[1], True)
    (t0, v0), (t1, v1) = before, after
    if v1 < v0:  # a reset in between: where it happened is unknown, so nothing across it is billed
        return v0, True
    return v0 + (v1 - v0) * (ts - t0) / (t1 - t0), t1 - t0 > max_gap_ms
