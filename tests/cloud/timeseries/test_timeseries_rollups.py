"""Hourly rollups: dirty marks, refresh, agreement with raw samples, and two replicas refreshing at once."""

from __future__ import annotations

import random
import threading
import time
from bisect import bisect_right
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import Engine, func, select, text

from cloud.db import make_engine
from cloud.schema import create_schema
from cloud.timeseries.bulk import SampleRow, write_samples
from cloud.timeseries.models import DirtyHour, HourRollup
from cloud.timeseries.query import Bucket, BucketSize, bucket_edges, buckets
from cloud.timeseries.rollup import HOUR_MS, RollupWorker, mark_dirty, refresh_rollups, series_hours
from protocols.quantities import PointKind
from tests.cloud.timeseries.tsdata import add, local_ms, new_series


def dirty_hours(engine: Engine) -> set[tuple[int, int]]:
    with engine.connect() as conn:
        return {(s, h) for s, h in conn.execute(select(DirtyHour.series_id, DirtyHour.hour_start))}


def rollup_counts(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        return {h: n for h, n in conn.execute(select(HourRollup.hour_start, HourRollup.count))}


def test_marking_is_idempotent_and_refresh_clears_the_marks(engine: Engine) -> None:
    sid = new_series(engine, "energy")
    with engine.begin() as conn:
        mark_dirty(conn, [(sid, 0), (sid, 0), (sid, HOUR_MS)])
        mark_dirty(conn, [(sid, HOUR_MS)])
        mark_dirty(conn, [])
        assert conn.scalar(select(func.count()).select_from(DirtyHour)) == 2
    add(engine, sid, [(10, 1.0), (HOUR_MS + 10, 2.0), (HOUR_MS + 20, 1.5)])
    assert dirty_hours(engine) == {(sid, 0), (sid, HOUR_MS)}
    with engine.begin() as conn:
        assert refresh_rollups(conn) == 2
        assert refresh_rollups(conn) == 0
    assert dirty_hours(engine) == set()
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(HourRollup).order_by(HourRollup.hour_start))]
    assert rows == [
        (sid, 0, 1, 1.0, 1.0, 1.0, 10, 1.0, 10, 1.0, 0.0, 0),
        (sid, HOUR_MS, 2, 1.5, 2.0, 3.5, HOUR_MS + 10, 2.0, HOUR_MS + 20, 1.5, 0.0, 1),
    ]


def test_refresh_works_through_a_backlog_in_bounded_transactions(engine: Engine) -> None:
    sid = new_series(engine, "energy")
    add(engine, sid, [(h * HOUR_MS, float(h)) for h in range(5)])
    done = []
    while n := _refresh(engine, max_marks=2):
        done.append(n)
    assert done == [2, 2, 1]
    assert rollup_counts(engine) == {h * HOUR_MS: 1 for h in range(5)}


def test_worker_refreshes_in_the_background(engine: Engine) -> None:
    sid = new_series(engine, "energy")
    worker = RollupWorker(engine, interval_s=0.05)
    worker.start()
    try:
        add(engine, sid, [(HOUR_MS, 1.0), (3 * HOUR_MS, 2.0)])
        deadline = time.monotonic() + 10
        while rollup_counts(engine) != {HOUR_MS: 1, 3 * HOUR_MS: 1} or dirty_hours(engine):
            assert time.monotonic() < deadline, "the worker did not refresh within 10 s"
            time.sleep(0.05)
    finally:
        worker.stop()


# --- agreement with raw samples -------------------------------------------------------------------


def random_rows(rng: random.Random, series_id: int, counter: bool, start_ms: int, n: int) -> list[SampleRow]:
    """Irregular gaps (same millisecond to hours), counter resets, 5% out-of-range samples."""
    rows: list[SampleRow] = []
    ts, value = start_ms, 1000.0
    for seq in range(n):
        ts += rng.choice([0, 1_000, 30_000, 60_000, 300_000, 900_000, 3 * HOUR_MS])
        if counter:
            value = rng.uniform(0, 5) if rng.random() < 0.02 else value + rng.uniform(0, 2)
        else:
            value = rng.uniform(200, 240)
        rows.append((series_id, ts, seq, value, 1 if rng.random() < 0.05 else 0))
    return rows


def reference_hours(rows: Sequence[SampleRow]) -> dict[int, tuple[object, ...]]:
    hours: dict[int, list[tuple[int, float]]] = {}
    for _, ts, _, value, _ in sorted((r for r in rows if r[4] == 0), key=lambda r: (r[1], r[2])):
        hours.setdefault(ts - ts % HOUR_MS, []).append((ts, value))
    result = {}
    for hour, samples in hours.items():
        values = [v for _, v in samples]
        deltas = [b - a for a, b in zip(values, values[1:], strict=False)]
        result[hour] = (len(values), min(values), max(values), sum(values), samples[0][0], values[0],
                        samples[-1][0], values[-1], sum(d for d in deltas if d > 0), sum(1 for d in deltas if d < 0))  # fmt: skip
    return result


def reference_buckets(
    rows: Sequence[SampleRow], counter: bool, start_ms: int, end_ms: int, bucket: BucketSize
) -> list[Bucket]:
    edges = bucket_edges(start_ms, end_ms, bucket)
    acc: list[list[float]] = [[0, 0.0, 0.0, 0, float("inf"), float("-inf")] for _ in edges[:-1]]
    previous = None
    for _, ts, _, value, _ in sorted((r for r in rows if r[4] == 0), key=lambda r: (r[1], r[2])):
        if start_ms <= ts < end_ms:
            a = acc[bisect_right(edges, ts) - 1]
            a[0] += 1
            a[1] += value
            if counter and previous is not None:
                a[2] += max(value - previous, 0.0)
                a[3] += value < previous
            a[4], a[5] = min(a[4], value), max(a[5], value)
        if ts < end_ms:
            previous = value
    return [
        Bucket(e, int(a[0]), a[4], a[1] / a[0], a[5], a[2] if counter else None, int(a[3]))
        if a[0]
        else Bucket(e, 0, None, None, None, 0.0 if counter else None, 0)
        for e, a in zip(edges, acc, strict=False)
    ]


def assert_same(got: list[Bucket], expected: list[Bucket]) -> None:
    assert [(b.start_ms, b.count, b.decreases, b.min, b.max) for b in got] == [
        (b.start_ms, b.count, b.decreases, b.min, b.max) for b in expected
    ]
    assert [x for b in got for x in (b.avg, b.consumption)] == pytest.approx(
        [x for b in expected for x in (b.avg, b.consumption)]
    )


def test_rollups_and_buckets_agree_with_raw_samples_for_random_data(engine: Engine) -> None:
    rng = random.Random(20240310)
    start = local_ms(2024, 2, 20)
    meter, voltage = new_series(engine, "energy"), new_series(engine, "voltage", "voltage_v")
    data = {meter: random_rows(rng, meter, True, start, 1500), voltage: random_rows(rng, voltage, False, start, 1500)}
    batches = [rows[i : i + 97] for rows in data.values() for i in range(0, len(rows), 97)]
    rng.shuffle(batches)  # late and out-of-order delivery
    for i, batch in enumerate(batches):
        with engine.begin() as conn:
            write_samples(conn, batch)
            mark_dirty(conn, series_hours(batch))
        if i == len(batches) // 2:
            _refresh(engine)  # the later half stays dirty for the first comparison

    def compare() -> None:
        for sid, rows in data.items():
            kind = PointKind.COUNTER if sid == meter else PointKind.GAUGE
            end = max(r[1] for r in rows) - 13 * 60_000
            with engine.connect() as conn:
                for bucket, lo, hi in [("hour", start, end), ("day", start + 37 * 60_000, end),
                                       ("month", start - 5 * HOUR_MS, end + 1), ("15min", start + 1, start + 3 * 86_400_000)]:  # fmt: skip
                    got = buckets(conn, sid, kind, lo, hi, bucket)
                    assert_same(got, reference_buckets(rows, sid == meter, lo, hi, bucket))

    compare()
    _refresh(engine)
    assert dirty_hours(engine) == set()
    compare()
    with engine.connect() as conn:
        for sid, rows in data.items():
            stored = {r[1]: r[2:] for r in conn.execute(select(HourRollup).where(HourRollup.series_id == sid))}
            expected = reference_hours(rows)
            assert stored.keys() == expected.keys()
            for hour, values in expected.items():
                assert list(stored[hour]) == pytest.approx(list(values))


# --- two hub replicas (PostgreSQL) ----------------------------------------------------------------


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def test_a_mark_committed_while_a_refresh_runs_survives_it(pg: Engine) -> None:
    sid = new_series(pg, "energy")
    add(pg, sid, [(HOUR_MS + 1_000, 1.0)])
    late: list[SampleRow] = [(sid, HOUR_MS + 2_000, 99, 2.0, 0)]
    with pg.connect() as ingest:
        with ingest.begin():
            write_samples(ingest, late)
            mark_dirty(ingest, series_hours(late))
            with pg.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '2s'"))  # ingest must never make a refresh wait
                assert refresh_rollups(conn) == 1  # cannot see the uncommitted sample
    assert rollup_counts(pg) == {HOUR_MS: 1}
    assert dirty_hours(pg) == {(sid, HOUR_MS)}  # so the hour is recomputed next time
    assert _refresh(pg) == 1
    assert rollup_counts(pg) == {HOUR_MS: 2}


def test_replicas_share_the_work_without_waiting_for_each_other(pg: Engine) -> None:
    meters = [new_series(pg, f"energy_{i}") for i in range(4)]
    for i, sid in enumerate(meters):
        add(pg, sid, [(i * HOUR_MS, float(i))])
    with pg.connect() as first, first.begin():
        assert refresh_rollups(first, max_marks=1) == 1
        with pg.begin() as second:
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            assert refresh_rollups(second) == 3  # skips the first replica's claim instead of waiting for it
    assert rollup_counts(pg) == {i * HOUR_MS: 1 for i in range(4)}


def test_replicas_recompute_one_hour_one_after_the_other(pg: Engine) -> None:
    sid = new_series(pg, "energy")
    add(pg, sid, [(1_000, 1.0)])
    add(pg, sid, [(2_000, 2.0)])  # a second writer transaction: a second mark for the same hour
    result: list[int] = []
    with pg.connect() as first:
        with first.begin():
            assert refresh_rollups(first, max_marks=1) == 1
            add(pg, sid, [(3_000, 3.0)])  # committed after the first replica read the hour
            second = threading.Thread(target=lambda: result.append(_refresh(pg)))
            second.start()
            second.join(0.5)
            assert second.is_alive(), "the second replica must wait for the hour the first one holds"
        second.join(10)
    assert result == [1]
    assert rollup_counts(pg) == {0: 3}
    assert _refresh(pg) == 0


def _refresh(engine: Engine, max_marks: int = 50_000) -> int:
    with engine.begin() as conn:
        return refresh_rollups(conn, max_marks)
