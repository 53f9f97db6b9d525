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
