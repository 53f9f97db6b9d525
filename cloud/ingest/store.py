"""Stores a group of checked messages in one transaction and says which Acks may now be sent.

Per edge touched, the edge_state row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL, in (site,
edge) order so two workers cannot deadlock; SQLite takes its one write lock with ``BEGIN IMMEDIATE``). Under
that lock a record whose seq is already in ``stored`` is a re-delivery and is skipped, which makes storing
idempotent by (edge, seq) whichever worker gets the copy. Readings (with their hours marked for the rollups),
events, dead letters and the new state commit together, so an Ack is never ahead of the data it confirms.

Errors are sorted into two kinds. The database being unreachable or unusable raises DatabaseUnavailable:
nothing is acked or dead-lettered, the caller retries, and the edge keeps its records meanwhile. A message the
database refuses (a value too long, a constraint), or one that trips a bug here, is found by storing the
group's messages one at a time; that one is dead-lettered (it gets no Ack, so its edge keeps the records) and
the rest are stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection, Engine, bindparam, insert, select, tuple_, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from cloud.db import is_postgres
from cloud.ingest.intake import Accepted, Rejected, dropped_ranges
from cloud.ingest.models import DeadLetter, EdgeStateRow, EventRow
from cloud.timeseries.bulk import SampleRow, SeriesIds, write_samples
from cloud.timeseries.models import QUALITY_CODES
from cloud.timeseries.rollup import mark_dirty, series_hours
from protocols import seq_ranges as ranges
from protocols.messages import Ack, DataBatch, EdgeState, Event, EventBatch, EventType, Quality, Reading, Status, encode
from protocols.topics import Downlink, EdgeTopics

log = logging.getLogger(__name__)

DEAD_LETTER_KEEP_BYTES = 64 * 1024
"""A dead letter keeps this much of its payload (and the original size)."""
R = TypeVar("R", Reading, Event)


class DatabaseUnavailable(RuntimeError):
    """The database cannot take writes now; nothing of the group was stored. Retry later."""


@dataclass(frozen=True)
class AckOut:
    topic: str
    payload: bytes


@dataclass
class Outcome:
    """What one committed group did; acks may be published only now that it is committed."""

    acks: list[AckOut] = field(default_factory=list)
    stored: int = 0
    """Records (readings and events) written."""
    duplicates: int = 0
    """Records skipped because their seq was already stored."""
    dead_letters: int = 0

    def add(self, other: Outcome) -> None:
        self.acks += other.acks
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters


@dataclass
class _Edge:
    """An edge_state row, locked and being changed by the current transaction."""

    id: int
    stored: ranges.Ranges
    dropped: ranges.Ranges
    values: dict[str, Any] = field(default_factory=dict)
    """Other columns to set."""

    @property
    def acked_through(self) -> int:
        return ranges.contiguous_through(ranges.merge([*self.stored, *self.dropped]))


class IngestStore:
    """Writes checked messages; one instance per worker (it caches series ids)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = is_postgres(engine)
        self._series = SeriesIds()

    def write(self, items: Sequence[Accepted | Rejected]) -> Outcome:
        """Store the group in one transaction; raises DatabaseUnavailable if the database cannot take it."""
        if not items:
            return Outcome()
        try:
            return self._transaction(items)
        except Exception as exc:
            self._series.forget()  # ids created in the rolled-back transaction do not exist
            if _unavailable(exc):
                raise DatabaseUnavailable(_describe(exc)) from exc
            if len(items) > 1:
                outcome = Outcome()
                for item in items:  # find the message the database refuses; store the others
                    outcome.add(self.write([item]))
                return outcome
            (item,) = items
            if isinstance(item, Accepted):
                log.warning("ingest: dead-lettering a message on %s: %s", item.incoming.topic, _describe(exc),
                            exc_info=not isinstance(exc, sa_exc.DBAPIError | psycopg.Error))  # a bug: show where
                return self.write([item.reject(f"the database refused it: {_describe(exc)}")])
            log.error("ingest: could not store a dead letter from %s (%s): %s", item.incoming.topic, item.reason, exc)
            return Outcome()

    def _transaction(self, items: Sequence[Accepted | Rejected]) -> Outcome:
        outcome = Outcome()
        accepted = [i for i in items if isinstance(i, Accepted)]
        dead = [_dead_letter_row(i) for i in items if isinstance(i, Rejected)]
        with self._engine.begin() as conn:
            if not self._postgres:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now, not at the first write
            edges = self._lock(conn, sorted({i.key for i in accepted}))
            samples: list[SampleRow] = []
            events: list[dict[str, Any]] = []
            answered: list[tuple[DataBatch | EventBatch, list[int]]] = []
            for item in accepted:
                message, edge = item.message, edges[item.key]
                if not item.incoming.retained:
                    edge.values["last_seen"] = item.incoming.received_at
                if isinstance(message, Status):
                    _apply_status(edge, message, item.incoming.received_at)
                    continue
                seqs = [r.seq for r in message.records]
                answered.append((message, seqs))
                if isinstance(message, DataBatch):
                    readings, new_runs = _unseen(message.records, seqs, edge.stored)
                    samples += self._sample_rows(conn, message, readings)
                    fresh_count = len(readings)
                else:
                    fresh, new_runs = _unseen(message.records, seqs, edge.stored)
                    events += _event_rows(message, fresh)
                    for event in fresh:
                        if event.type is EventType.RECORDS_DROPPED:
                            edge.dropped = ranges.merge([*edge.dropped, *dropped_ranges(event)])
                    fresh_count = len(fresh)
                outcome.duplicates += len(seqs) - fresh_count
                outcome.stored += fresh_count
                if new_runs:
                    edge.stored = ranges.merge([*edge.stored, *new_runs])
            write_samples(conn, samples)
            mark_dirty(conn, series_hours(samples))  # the hourly rollups of these hours are recomputed
            if events:
                conn.execute(insert(EventRow), events)
            if dead:
                conn.execute(insert(DeadLetter), dead)
            self._save(conn, edges.values())
        outcome.dead_letters = len(dead)
        outcome.acks = [_ack(message, seqs, edges[message.site, message.edge]) for message, seqs in answered]
        return outcome

    def _lock(self, conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _Edge]:
        """Create missing edge_state rows, then lock them all, in key order (no deadlock between workers)."""
        if not keys:
            return {}
        row = EdgeStateRow
        insert_ = pg_insert if self._postgres else sqlite_insert
        fresh = [{"site": s, "edge": e, "stored": [], "dropped": [], "acked_through": 0, "dropped_total": 0}
                 for s, e in keys]  # fmt: skip
        conn.execute(insert_(row).on_conflict_do_nothing(), fresh)
        query = (
            select(row.id, row.site, row.edge, row.stored, row.dropped)
            .where(tuple_(row.site, row.edge).in_(keys))
            .order_by(row.site, row.edge)
            .with_for_update()
        )
        return {(site, edge): _Edge(id_, stored, dropped) for id_, site, edge, stored, dropped in conn.execute(query)}

    def _save(self, conn: Connection, edges: Iterable[_Edge]) -> None:
        for edge in edges:  # few per group; columns differ by what each edge sent
            values = {**edge.values, "stored": edge.stored, "dropped": edge.dropped}
            conn.execute(
                update(EdgeStateRow).where(EdgeStateRow.id == bindparam("edge_id")),
                {"edge_id": edge.id, "acked_through": edge.acked_through, **values},
            )

    def _sample_rows(self, conn: Connection, batch: DataBatch, new: list[Reading]) -> list[SampleRow]:
        if not new:
            return []
        site, edge = batch.site, batch.edge
        points = {(r.device, r.point): r.quantity for r in new}
        ids = self._series.resolve(conn, {(site, edge, d, p): q for (d, p), q in points.items()})
        by_point = {(d, p): ids[site, edge, d, p] for d, p in points}
        good = Quality.GOOD  # compared by identity: hashing an enum member is slow at 100k rows/s
        return [
            (by_point[r.device, r.point], r.ts, r.seq, r.value, 0 if r.quality is good else QUALITY_CODES[r.quality])
            for r in new
        ]


def _apply_status(edge: _Edge, status: Status, received_at: datetime) -> None:
    """Statuses apply in arrival order: the MQTT will is older than the statuses it follows, by its sent_at."""
    edge.values.update(
        online=status.state is EdgeState.ONLINE,
        status_at=received_at,
        last_status=status.model_dump(mode="json", exclude={"v", "kind", "site", "edge"}),
        dropped_total=status.dropped_total,
    )


def _unseen(records: list[R], seqs: list[int], stored: ranges.Ranges) -> tuple[list[R], ranges.Ranges]:
    """Records not stored before, and their seqs as ranges: a re-delivered seq is skipped, whatever it carries.

    Seqs are unique within a batch (intake), so min..max of len(seqs) is one run: the usual, new batch costs
    one lookup instead of one per record.
    """
    first, last = min(seqs), max(seqs)
    if last - first + 1 == len(seqs) and not ranges.overlaps(stored, first, last):
        return records, [[first, last]]
    fresh = [r for r in records if not ranges.contains(stored, r.seq)]
    return fresh, ranges.runs(r.seq for r in fresh)


def _event_rows(batch: EventBatch, new: list[Event]) -> list[dict[str, Any]]:
    return [
        {"site": batch.site, "edge": batch.edge, "seq": e.seq, "ts": e.ts, "type": e.type.value, "device": e.device,
         "point": e.point, "message": e.message, "data": e.data}
        for e in new
    ]  # fmt: skip


def _ack(message: DataBatch | EventBatch, seqs: list[int], edge: _Edge) -> AckOut:
    """Confirms the contiguous run from seq 1, and this batch (when it is one run, as the edge sends them)."""
    first, last = min(seqs), max(seqs)
    stored = (first, last) if last - first + 1 == len(seqs) else None
    ack = Ack(edge=message.edge, acked_through=edge.acked_through, stored=stored)
    return AckOut(EdgeTopics(message.site, message.edge).down(Downlink.ACK), encode(ack))


def _dead_letter_row(item: Rejected) -> dict[str, Any]:
    payload = item.incoming.payload
    return {
        "received_at": item.incoming.received_at,
        "topic": _printable(item.incoming.topic),
        "reason": _printable(item.reason),
        "payload": payload[:DEAD_LETTER_KEEP_BYTES],
        "size": len(payload),
        "site": item.site,
        "edge": item.edge,
    }


def _printable(text: str) -> str:
    """Text any backend stores: no NUL, no lone surrogates (they may come from the payload)."""
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


def _unavailable(exc: BaseException) -> bool:
    """A database error that is not about the data: connection lost, server down, schema missing, lock timeout."""
    if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError | psycopg.DataError | psycopg.IntegrityError):
        return False
    return isinstance(exc, sa_exc.SQLAlchemyError | psycopg.Error)


def _describe(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's SQL echo and background link."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return f"{type(orig).__name__}: {text}"
