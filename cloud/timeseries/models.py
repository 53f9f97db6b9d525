"""Series identity and raw samples.

A series is one point of one device behind one edge. Samples are keyed (series, ts, seq): range scans
by time use the key directly, and the edge's seq keeps two readings at the same millisecond apart.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, ForeignKey, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base

QUALITY_CODES = {"good": 0, "out_of_range": 1}


class Series(Base):
    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("site", "edge", "device", "point"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    edge: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(128))
    point: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[str] = mapped_column(String(64))


class Sample(Base):
    __tablename__ = "samples"

    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Epoch milliseconds, as measured at the edge."""
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    quality: Mapped[int] = mapped_column(SmallInteger, default=0)


class HourRollup(Base):
    """Aggregates of one series' good samples in one UTC hour, so long ranges read hours, not samples.

    ``increase``/``decreases`` cover the deltas between consecutive samples inside the hour only: the step
    from the previous hour's last sample is taken at query time, so late data dirties only its own hour.
    """

    __tablename__ = "rollup_hours"

    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"), primary_key=True)
    hour_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Epoch milliseconds, a multiple of one hour."""
    count: Mapped[int] = mapped_column(Integer)
    min: Mapped[float] = mapped_column(Double)
    max: Mapped[float] = mapped_column(Double)
    sum: Mapped[float] = mapped_column(Double)
    first_ts: Mapped[int] = mapped_column(BigInteger)
    first_value: Mapped[float] = mapped_column(Double)
    last_ts: Mapped[int] = mapped_column(BigInteger)
    last_value: Mapped[float] = mapped_column(Double)
    increase: Mapped[float] = mapped_column(Double)
    """Sum of the positive deltas inside the hour (counters: consumption)."""
    decreases: Mapped[int] = mapped_column(Integer)
    """Negative deltas inside the hour (counters: resets or glitches, never billed)."""


class DirtyHour(Base):
    """An hour whose rollup is stale: one mark per (series, hour, writing transaction).

    The writer's transaction id in the key means a mark committed while a refresh runs is a new row the
    refresh never claimed, so it survives (PostgreSQL; SQLite has one writer at a time and uses 0). No
    foreign key: marks are written on the ingest path and live only until the next refresh.
    """

    __tablename__ = "rollup_dirty"

    series_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    txn: Mapped[int] = mapped_column(BigInteger, primary_key=True)
