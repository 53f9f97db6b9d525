"""A year of one meter at 1-minute resolution on PostgreSQL: day and month buckets answered from rollups.

525,600 samples loaded with write_samples (COPY) into a scratch database, rolled up once, then each query
timed as the median of several runs. Field lesson: time series in PostgreSQL slow down as they grow
unless long ranges read rollups instead of raw rows.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable

import psycopg

from cloud.db import make_engine
from cloud.schema import create_schema
from cloud.timeseries.bulk import SeriesIds, write_samples
from cloud.timeseries.query import BucketSize, buckets
from cloud.timeseries.rollup import mark_dirty, refresh_rollups, series_hours
from protocols.quantities import PointKind

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
YEAR_START_MS = 1_735_660_800_000
"""2025-01-01 00:00 in Beijing."""
MINUTES = 525_600
RUNS = 7


def _median_ms(action: Callable[[], object]) -> float:
    action()  # warm-up: plans, caches
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def run() -> dict[str, float]:
    name = f"eh_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        create_schema(engine)
        key = ("bench", "edge", "dtsu666-1", "energy_import")
        with engine.begin() as conn:
            sid = SeriesIds().resolve(conn, {key: "energy_import_kwh"})[key]
            rows = [(sid, YEAR_START_MS + i * 60_000, i, 1000.0 + 0.01 * i, 0) for i in range(MINUTES)]
            write_samples(conn, rows)
            mark_dirty(conn, series_hours(rows))
        started = time.perf_counter()
        with engine.begin() as conn:
            refresh_rollups(conn)
        refresh_ms = round((time.perf_counter() - started) * 1000)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        year_end_ms = YEAR_START_MS + MINUTES * 60_000

        def query(bucket: BucketSize) -> Callable[[], object]:
            def once() -> object:
                with engine.connect() as conn:
                    return buckets(conn, sid, PointKind.COUNTER, YEAR_START_MS, year_end_ms, bucket)

            return once

        return {
            "timeseries_year_rollup_refresh_ms": refresh_ms,
            "timeseries_year_day_buckets_ms": _median_ms(query("day")),
            "timeseries_year_month_buckets_ms": _median_ms(query("month")),
        }
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    for figure, value in run().items():
        print(f"{figure}: {value}")
