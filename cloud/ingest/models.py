"""Ingest tables: edge events, rejected payloads, and each edge's delivery state.

Readings go to ``samples`` (cloud.timeseries). Seq ranges are kept as merged ``[first, last]`` JSON lists
rather than one row per seq: an edge that delivers in order stays at ``[[1, N]]`` however long it runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, Json, UtcDateTime
from protocols.seq_ranges import Ranges, gaps, merge


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("site", "edge", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    edge: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[int] = mapped_column(BigInteger)
    """Epoch milliseconds, as measured at the edge."""
    type: Mapped[str] = mapped_column(String(32))
    device: Mapped[str | None] = mapped_column(String(128))
    point: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(Json)


class DeadLetter(Base):
    """A message the hub could not accept, kept with the reason so a person can act on it."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    topic: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    """The raw payload, cut to DEAD_LETTER_KEEP_BYTES."""
    size: Mapped[int] = mapped_column(Integer)
    """The payload's original size in bytes."""
    site: Mapped[str | None] = mapped_column(String(64))
    edge: Mapped[str | None] = mapped_column(String(64))
    """From the topic, when the topic is well formed."""


class EdgeStateRow(Base):
    """What the hub knows of one edge: liveness, and which seqs it holds (the source of every Ack)."""

    __tablename__ = "edge_state"
    __table_args__ = (UniqueConstraint("site", "edge"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    edge: Mapped[str] = mapped_column(String(64))
    online: Mapped[bool | None] = mapped_column(Boolean)
    """From the latest status (the MQTT will says offline); None until a status arrives."""
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the hub last received a live (not retained) message from the edge."""
    status_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_status: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """The latest Status as sent: backlog, dropped_total, agent and config versions, link health per device."""
    stored: Mapped[Ranges] = mapped_column(Json, default=list)
    """Merged [first, last] ranges of seqs stored (readings and events share one seq space)."""
    dropped: Mapped[Ranges] = mapped_column(Json, default=list)
    """Merged ranges the edge reported dropped (records_dropped events): they will never arrive."""
    acked_through: Mapped[int] = mapped_column(BigInteger, default=0)
    """End of the run from seq 1 that is stored or accounted as dropped."""
    dropped_total: Mapped[int] = mapped_column(BigInteger, default=0)
    """Records the edge says it ever dropped (its status), over the outbox's whole life."""

    def gaps(self) -> Ranges:
        """Seqs missing below the highest one stored or accounted for: delivered late, or lost."""
        return gaps(merge([*self.stored, *self.dropped]))
