"""Bulk sample writes inside the caller's transaction: COPY on PostgreSQL, executemany on SQLite.

The caller (ingest) has already removed records it stored before, so these writes never conflict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cloud.timeseries.models import Sample, Series

SeriesKey = tuple[str, str, str, str]
"""(site, edge, device, point)"""
SampleRow = tuple[int, int, int, float, int]
"""(series_id, ts, seq, value, quality)"""


class SeriesIds:
    """Series ids by key, created on first sight; cached because every reading needs one."""

    def __init__(self) -> None:
        self._ids: dict[SeriesKey, int] = {}

    def resolve(self, conn: Connection, wanted: dict[SeriesKey, str]) -> dict[SeriesKey, int]:
        """Ids for every key (value: the quantity, used when the series is new)."""
        missing = [k for k in wanted if k not in self._ids]
        if missing:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            rows = [{"site": s, "edge": e, "device": d, "point": p, "quantity": wanted[(s, e, d, p)]}
                    for s, e, d, p in missing]  # fmt: skip
            conn.execute(insert(Series).on_conflict_do_nothing(), rows)
            for site, edge in {(k[0], k[1]) for k in missing}:
                query = select(Series.id, Series.device, Series.point).where(Series.site == site, Series.edge == edge)
                for sid, device, point in conn.execute(query):
                    self._ids[(site, edge, device, point)] = sid
        return {k: self._ids[k] for k in wanted}

    def forget(self) -> None:
        """After a rollback, ids created in it may not exist."""
        self._ids.clear()


def write_samples(conn: Connection, rows: Sequence[SampleRow]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, rows)
    else:
        conn.exec_driver_sql(
            "INSERT INTO samples (series_id, ts, seq, value, quality) VALUES (?, ?, ?, ?, ?)", list(rows)
        )


def _copy(conn: Connection, rows: Iterable[SampleRow]) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        sql = "COPY samples (series_id, ts, seq, value, quality) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(sql) as copy:
            copy.set_types(["int4", "int8", "int8", "float8", "int2"])
            for row in rows:
                copy.write_row(row)


__all__ = ["Sample", "SampleRow", "SeriesIds", "SeriesKey", "write_samples"]
