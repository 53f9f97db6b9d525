"""The outbox: every collected record waits here, on disk, until the hub has acknowledged it.

One SQLite file in WAL mode with synchronous=FULL, so a record counts as collected only once its
transaction is fsynced, and a crash or power cut at any point loses nothing that ``add`` returned. One
sequence space covers readings and events; the counter is persisted and never reused, so the hub can
store idempotently by (edge, seq) and find gaps. When a limit forces records out, the oldest go and a
``records_dropped`` event names their seq ranges, so a gap at the hub is always explained.

Deletions only ever remove a prefix (acks and drops both take the oldest), so the stored seqs are always
one contiguous run ``first..last_seq``; counting the backlog is O(1) because of it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from protocols.messages import Event, EventType, Reading
from protocols.seq_ranges import merge

log = logging.getLogger(__name__)

APPLICATION_ID = 0x45484F42  # "EHOB": marks the file as an EstateHub outbox
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE records (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('reading', 'event')),
    added_at REAL NOT NULL,  -- when collected (epoch s): the age limit counts from here, not from ts
    ts INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta VALUES ('last_seq', 0), ('acked_through', 0), ('dropped_total', 0);
"""
Record = Reading | Event


class OutboxError(RuntimeError):
    """The outbox file cannot be used; it was left untouched because it may hold undelivered records."""


@dataclass(frozen=True)
class OutboxStats:
    backlog: int
    """Records waiting for the hub's ack."""
    oldest_ts: int | None
    """Timestamp (epoch ms) of the oldest waiting record."""
    last_seq: int
    acked_through: int
    dropped_total: int
    """Records ever dropped by the limits, over the outbox's whole life."""


class Outbox:
    """Durable, thread-safe FIFO of records keyed by seq; the poller adds, the uplink reads and acks."""

    def __init__(
        self, path: str | Path, *, max_records: int, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        if max_records < 1:
            raise ValueError(f"max_records must be at least 1, got {max_records}")
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self.path = Path(path)
        self._max_records = max_records
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._db = self._open()
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        self._last_seq: int = meta["last_seq"]
        self._acked_through: int = meta["acked_through"]
        self._dropped_total: int = meta["dropped_total"]

    def _open(self) -> sqlite3.Connection:
        """Open or create the file; refuse anything that is not a healthy outbox instead of replacing it."""
        what = f"outbox {self.path}"
        advice = "it may hold undelivered records: move it aside (and keep it) to start with an empty outbox"
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=1.0)
        except sqlite3.Error as exc:
            raise OutboxError(f"{what} cannot be opened: {exc}") from None
        try:
            # Exclusive locking: a second agent on the same file would hand out the same seqs.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            if db.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
                raise OutboxError(f"{what}: the filesystem does not support SQLite WAL mode")
            db.execute("PRAGMA synchronous=FULL")
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id == 0 and tables == 0:
                db.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA application_id={APPLICATION_ID};"
                    f" PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
                )
            elif app_id != APPLICATION_ID:
                raise OutboxError(f"{what} is an SQLite database but not an EstateHub outbox; {advice}")
            else:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    raise OutboxError(f"{what} has schema version {version}; this build reads {SCHEMA_VERSION}")
                check = db.execute("PRAGMA quick_check(1)").fetchone()[0]
                if check != "ok":
                    raise OutboxError(f"{what} is damaged ({check.replace(chr(10), ' ')}); {advice}")
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" in str(exc):
                raise OutboxError(f"{what} is in use by another process (is another agent running?)") from None
            raise OutboxError(f"{what} cannot be opened: {exc}; {advice}") from None
        except sqlite3.DatabaseError as exc:
            db.close()
            raise OutboxError(f"{what} is not a readable outbox ({exc}); {advice}") from None
        except OutboxError:
            db.close()
            raise
        return db

    def add(self, items: Sequence[Mapping[str, Any]]) -> list[int]:
        """Validate and commit records in one transaction; returns their seqs once they are on disk.

        Each item is a Reading or Event without its seq, plus ``"kind": "reading" | "event"``, as JSON-ready
        values (enums as their strings). Raises ValueError, and stores nothing, if any item is invalid.
        """
        if not items:
            return []
        with self._lock:
            now = self._clock()
            first_new = self._last_seq + 1
            rows = [_row(first_new + i, item, i, now) for i, item in enumerate(items)]
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
                last, dropped = self._enforce_limits(now, first_new + len(rows) - 1)
                self._set_meta(last_seq=last, dropped_total=self._dropped_total + dropped)
            self._last_seq = last
            self._dropped_total += dropped
        return list(range(first_new, first_new + len(rows)))

    def _enforce_limits(self, now: float, last: int) -> tuple[int, int]:
        """Drop the oldest records past either limit and record the drop as an event (inside add's transaction).

        Returns the new last seq and how many records were dropped.
        """
        first: int = self._db.execute("SELECT min(seq) FROM records").fetchone()[0]
        young = self._db.execute(
            "SELECT seq FROM records WHERE added_at >= ? ORDER BY seq LIMIT 1", (now - self._max_age_s,)
        ).fetchone()
        age_through = (young[0] if young else last + 1) - 1
        if age_through < first and last - first + 1 <= self._max_records:
            return last, 0
        through = max(age_through, last + 1 - self._max_records)  # leave room for the event itself
        ranges = [[first, through]]
        for (body,) in self._db.execute(
            "SELECT body FROM records WHERE seq BETWEEN ? AND ? AND kind = 'event'", (first, through)
        ):
            earlier = Event.model_validate_json(body)
            if earlier.type is EventType.RECORDS_DROPPED:  # keep the gaps it reported known to the hub
                ranges.extend(earlier.data["ranges"])
        ranges = merge(ranges)
        dropped = through - first + 1
        by_age = age_through - first + 1
        self._db.execute("DELETE FROM records WHERE seq <= ?", (through,))
        event = Event(
            seq=last + 1,
            ts=int(now * 1000),
            type=EventType.RECORDS_DROPPED,
            message=f"outbox limits reached: dropped the {dropped} oldest undelivered records (seq {first}-{through})",
            data={
                "ranges": ranges,
                "count": sum(b - a + 1 for a, b in ranges),
                "by_age": by_age,
                "by_limit": dropped - by_age,
            },
        )
        self._db.execute("INSERT INTO records VALUES (?, 'event', ?, ?, ?)", (event.seq, now, event.ts, _body(event)))
        log.warning("%s: %s", self.path, event.message)
        return last + 1, dropped

    def read_from(self, seq: int, limit: int, max_bytes: int) -> list[Record]:
        """Records with seq >= ``seq`` in seq order, at most ``limit`` of them.

        ``max_bytes`` bounds the sum of the records' JSON sizes plus one separator each; the first record is
        always returned, even if larger, so a big record cannot block the queue.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, body FROM records WHERE seq >= ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()
        records: list[Record] = []
        size = 0
        for kind, body in rows:
            size += len(body) + 1
            if records and size > max_bytes:
                break
            records.append(_MODELS[kind].model_validate_json(body))
        return records

    def ack(self, through: int) -> None:
        """The hub has stored every seq <= ``through``: delete them for good."""
        with self._lock:
            if through <= self._acked_through:
                return
            last = self._last_seq
            if through > last:
                # Only possible if this outbox replaced one the hub already heard from: jump past the hub's
                # view, or every new record up to ``through`` would look like a duplicate to it.
                log.warning(
                    "%s: the hub acknowledged seq %d but the last seq handed out here is %d (was the outbox "
                    "replaced?); new records continue from seq %d",
                    self.path,
                    through,
                    last,
                    through + 1,
                )
                last = through
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM records WHERE seq <= ?", (through,))
                self._set_meta(acked_through=through, last_seq=last)
            self._acked_through = through
            self._last_seq = last

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def stats(self) -> OutboxStats:
        with self._lock:
            oldest = self._db.execute("SELECT seq, ts FROM records ORDER BY seq LIMIT 1").fetchone()
            return OutboxStats(
                backlog=self._last_seq - oldest[0] + 1 if oldest else 0,
                oldest_ts=oldest[1] if oldest else None,
                last_seq=self._last_seq,
                acked_through=self._acked_through,
                dropped_total=self._dropped_total,
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _set_meta(self, **values: int) -> None:
        self._db.executemany("UPDATE meta SET value = ? WHERE key = ?", [(v, k) for k, v in values.items()])


_MODELS: dict[str, type[Reading] | type[Event]] = {"reading": Reading, "event": Event}


def _body(record: Record) -> bytes:
    """The record's JSON exactly as it appears inside an uplink batch (protocols.messages.encode)."""
    return record.model_dump_json(exclude_none=True).encode()


def _row(seq: int, item: Mapping[str, Any], index: int, now: float) -> tuple[int, str, float, int, bytes]:
    """Validate one draft the way the hub will (strict JSON) and turn it into a table row."""
    fields: dict[str, Any] = dict(item)
    kind = fields.pop("kind", None)
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ValueError(f"record {index}: kind must be 'reading' or 'event', got {kind!r}")
    try:
        record = model.model_validate_json(json.dumps({**fields, "seq": seq}, allow_nan=False))
    except (TypeError, ValueError) as exc:  # ValidationError is a ValueError; json raises both
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"record {index} ({kind}): {where}: {first['msg']}") from None
        raise ValueError(f"record {index} ({kind}): not serialisable as JSON: {exc}") from None
    return seq, kind, now, record.ts, _body(record)
