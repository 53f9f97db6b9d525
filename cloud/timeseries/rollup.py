"""Hourly rollups: ingest marks the hours it wrote as dirty, a refresh recomputes them from raw samples.

Recomputing a whole hour from raw samples (instead of adding each batch to a running total) makes late,
out-of-order and re-delivered readings harmless: the hour is simply recomputed once more.

Concurrency (PostgreSQL, READ COMMITTED, the default): a refresh claims marks with FOR UPDATE SKIP LOCKED,
so hub replicas share the work; it then takes transaction-scoped advisory locks on the claimed series
(hashed into LOCK_BUCKETS), in order, so two refreshes that claimed different marks of one hour recompute
it one after the other, each reading after the previous one committed. Each hour's rows are deleted and
re-inserted, so even without those locks two overlapping refreshes could only fail on the primary key
(and retry), never leave a stale rollup. Ingest never waits: its marks carry its own transaction id, so
they never collide with a mark being claimed, and a mark it commits during a refresh was not claimed
by it. SQLite allows one writer at a time; the refresh writes (deletes its marks) before it reads
samples, so no ingest can commit between its reads and its commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cloud.timeseries.bulk import SampleRow
from cloud.timeseries.models import DirtyHour
from cloud.workers import PeriodicWorker

HOUR_MS = 3_600_000
CHUNK = 2_000
"""Series per recompute statement: keeps bound parameters well under both databases' limits."""
LOCK_NAMESPACE = 0x526F6C6C
"""First key of the refresh's advisory locks ("Roll"), apart from other users of two-key locks."""
LOCK_BUCKETS = 256
"""Series share this many advisory locks, so a refresh holds a bounded number whatever its backlog
(one lock per hour ran out of max_locks_per_transaction on a year's backfill)."""



def hour_start(ts_ms: int) -> int:
    return ts_ms - ts_ms % HOUR_MS


def series_hours(rows: Iterable[SampleRow]) -> set[tuple[int, int]]:
    """The (series_id, hour_start) pairs a batch of samples touches: what ingest passes to mark_dirty."""
    return {(row[0], hour_start(row[1])) for row in rows}


def mark_dirty(conn: Connection, series_hours: Iterable[tuple[int, int]]) -> None:
    """Mark hours stale, inside the caller's transaction (one multi-row INSERT ... ON CONFLICT DO NOTHING)."""
    rows = [{"s": s, "h": h} for s, h in sorted(set(series_hours))]
    if not rows:
        return
    values: dict[str, Any] = {"series_id": bindparam("s"), "hour_start": bindparam("h")}
    if conn.dialect.name == "postgresql":
        stmt = pg_insert(DirtyHour).values(**values, txn=text("pg_current_xact_id()::text::bigint"))
        conn.execute(stmt.on_conflict_do_nothing(), rows)
    else:
        conn.execute(sqlite_insert(DirtyHour).values(**values, txn=0).on_conflict_do_nothing(), rows)


def refresh_rollups(conn: Connection, max_marks: int = 50_000) -> int:
    """Recompute the dirty hours (up to ``max_marks`` marks) in the caller's transaction; returns hours done.

    Bounded so a backlog (a backfill of a year) becomes several moderate transactions: call again until
    it returns 0, as RollupWorker does.
    """
    postgres = conn.dialect.name == "postgresql"
    rows = conn.execute(text(_CLAIM_PG if postgres else _CLAIM_SQLITE), {"limit": max_marks})
    claimed: list[tuple[int, int]] = [(row[0], row[1]) for row in rows]
    series_by_hour: dict[int, set[int]] = {}
    for series_id, hour in claimed:
        series_by_hour.setdefault(hour, set()).add(series_id)
    if postgres and claimed:
        buckets = sorted({s % LOCK_BUCKETS for s, _ in claimed})
        conn.execute(text(_LOCK_SERIES), {"namespace": LOCK_NAMESPACE, "buckets": buckets})
    for series, lo, hi in _rectangles(series_by_hour):
        for i in range(0, len(series), CHUNK):
            params = {"series": series[i : i + CHUNK], "lo": lo, "hi": hi}
            conn.execute(_DELETE_ROLLUPS, params)
            conn.execute(_RECOMPUTE, params)
    return sum(len(series) for series in series_by_hour.values())


def _rectangles(series_by_hour: dict[int, set[int]]) -> Iterator[tuple[list[int], int, int]]:
    """(series, lo, hi): runs of consecutive hours that are dirty for the same series.

    Each becomes one statement whose series and time bounds are constants, so the planner scans the
    samples index per series over exactly the dirty hours, whatever its statistics say (a join on
    ts BETWEEN hour_start AND ... got a hash join over the whole table on PostgreSQL).
    """
    run: tuple[list[int], int, int] | None = None
    for hour in sorted(series_by_hour):
        series = sorted(series_by_hour[hour])
        if run is not None and run[2] == hour and run[0] == series:
            run = (series, run[1], hour + HOUR_MS)
            continue
        if run is not None:
            yield run
        run = (series, hour, hour + HOUR_MS)
    if run is not None:
        yield run


# Claiming deletes the marks at once: on SQLite that first write takes the write lock before any read.
_CLAIM_PG = """
DELETE FROM rollup_dirty WHERE ctid IN (
    SELECT ctid FROM rollup_dirty ORDER BY series_id, hour_start LIMIT :limit FOR UPDATE SKIP LOCKED
) RETURNING series_id, hour_start
"""
_CLAIM_SQLITE = """
DELETE FROM rollup_dirty WHERE rowid IN (
    SELECT rowid FROM rollup_dirty ORDER BY series_id, hour_start LIMIT :limit
) RETURNING series_id, hour_start
"""
_LOCK_SERIES = "SELECT pg_advisory_xact_lock(:namespace, b) FROM unnest(CAST(:buckets AS integer[])) AS b ORDER BY b"
_DELETE_ROLLUPS = text(
    "DELETE FROM rollup_hours WHERE series_id IN :series AND hour_start >= :lo AND hour_start < :hi"
).bindparams(bindparam("series", expanding=True))
_RECOMPUTE = text(f"""
WITH ordered AS (
    SELECT series_id, ts - ts % {HOUR_MS} AS hour_start, ts, value,
           value - LAG(value) OVER w AS delta,
           ROW_NUMBER() OVER w AS n,
           COUNT(*) OVER (PARTITION BY series_id, ts - ts % {HOUR_MS}) AS total
    FROM samples
    WHERE series_id IN :series AND ts >= :lo AND ts < :hi AND quality = 0
    WINDOW w AS (PARTITION BY series_id, ts - ts % {HOUR_MS} ORDER BY ts, seq)
)
INSERT INTO rollup_hours (series_id, hour_start, count, min, max, sum, first_ts, first_value, last_ts,
                          last_value, increase, decreases)
SELECT series_id, hour_start, COUNT(*), MIN(value), MAX(value), SUM(value),
       MIN(ts), MAX(CASE WHEN n = 1 THEN value END), MAX(ts), MAX(CASE WHEN n = total THEN value END),
       COALESCE(SUM(CASE WHEN delta > 0 THEN delta END), 0), COUNT(CASE WHEN delta < 0 THEN 1 END)
FROM ordered
GROUP BY series_id, hour_start
""").bindparams(bindparam("series", expanding=True))


class RollupWorker(PeriodicWorker):
    """Refreshes rollups every ``interval_s`` on a background thread; safe to run on every hub replica."""

    name = "rollup-worker"

    def __init__(self, engine: Engine, interval_s: float = 60.0) -> None:
        self._engine = engine
        super().__init__(interval_s)

    def run_once(self) -> int:
        """Refresh until nothing is dirty (or stop is asked); returns hours recomputed."""
        total = 0
        while not self._stop.is_set():
            with self._engine.begin() as conn:
                done = refresh_rollups(conn)
            if not done:
                break
            total += done
        return total
