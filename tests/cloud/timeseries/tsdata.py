"""Test data helpers: series, samples written the way ingest writes them, local wall-clock times."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from cloud.timeseries.bulk import SampleRow, SeriesIds, write_samples
from cloud.timeseries.rollup import mark_dirty, series_hours

BEIJING = ZoneInfo("Asia/Shanghai")
_seq = itertools.count(1)


def local_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: ZoneInfo = BEIJING) -> int:
    return round(datetime(year, month, day, hour, minute, tzinfo=tz).timestamp() * 1000)


def new_series(engine: Engine, point: str, quantity: str = "energy_import_kwh") -> int:
    with engine.begin() as conn:
        key = ("site", "edge", "meter", point)
        return SeriesIds().resolve(conn, {key: quantity})[key]


def add(engine: Engine, series_id: int, samples: Sequence[tuple[int, float] | tuple[int, float, int]]) -> None:
    """Write (ts, value[, quality]) samples and mark their hours dirty in one transaction, as ingest does."""
    rows: list[SampleRow] = [(series_id, s[0], next(_seq), s[1], s[2] if len(s) == 3 else 0) for s in samples]
    with engine.begin() as conn:
        write_samples(conn, rows)
        mark_dirty(conn, series_hours(rows))
