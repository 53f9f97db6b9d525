"""Bulk sample writes land identically on SQLite (executemany) and PostgreSQL (COPY)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from cloud.timeseries.bulk import SeriesIds, write_samples
from cloud.timeseries.models import Sample, Series


def test_series_are_created_once_and_samples_written(engine: Engine) -> None:
    ids = SeriesIds()
    keys = {("s1", "e1", "m1", "energy_import"): "energy_import_kwh", ("s1", "e1", "m2", "voltage_a"): "voltage_v"}
    with engine.begin() as conn:
        first = ids.resolve(conn, keys)
        write_samples(conn, [(first[k], 1000 + i, i + 1, 1.5 * i, 0) for i, k in enumerate(keys)])
    with engine.begin() as conn:
        again = SeriesIds().resolve(conn, keys)
        assert again == first
        assert conn.scalar(select(func.count()).select_from(Series)) == 2
        rows = conn.execute(select(Sample.series_id, Sample.ts, Sample.seq, Sample.value).order_by(Sample.seq)).all()
    assert [tuple(r) for r in rows] == [(first[k], 1000 + i, i + 1, 1.5 * i) for i, k in enumerate(keys)]
