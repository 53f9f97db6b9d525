"""Cumulative-register checks: a counter that goes backwards is reported, never silently "fixed".

Raw values always go upstream unchanged; these checks add an event next to them so the hub (and billing)
can decide what the jump means.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from protocols.messages import EventType

REPLACEMENT_FRACTION = 0.1
"""A counter that restarts below this fraction of its last value looks like a new meter."""
ROLLOVER_BAND = 0.1
"""A wrap is plausible when the old value was within this fraction of the rollover point and the new one near 0."""


@dataclass(frozen=True)
class CounterJump:
    type: EventType
    previous: float
    current: float
    message: str


def check_counter(previous: float | None, current: float, rollover: float | None) -> CounterJump | None:
    """Classify a decrease of a cumulative register; None when the counter moved forward or held."""
    if previous is None or current >= previous:
        return None
    if rollover is not None and previous >= rollover * (1 - ROLLOVER_BAND) and current <= rollover * ROLLOVER_BAND:
        return CounterJump(
            EventType.COUNTER_ROLLOVER,
            previous,
            current,
            f"counter wrapped at {rollover:g}: {previous:g} -> {current:g} (advance {rollover - previous + current:g})",
        )
    if current <= previous * REPLACEMENT_FRACTION:
        return CounterJump(
            EventType.METER_REPLACED,
            previous,
            current,
            f"counter restarted: old final {previous:g}, new initial {current:g}",
        )
    return CounterJump(
        EventType.COUNTER_DECREASE,
        previous,
        current,
        f"counter went backwards by {previous - current:g} ({previous:g} -> {current:g}): "
        "reverse flow, tamper or a bad read",
    )


class CounterTracker:
    """Remembers the last value of every counter point of one agent, across restarts when given a file.

    The file matters: a meter replaced while the edge box was off is only noticed by comparing with the
    value read before the outage. Saved without fsync: after a power cut the last value may be one poll
    old, which still tells a replacement or rollover from normal advance.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._last: dict[tuple[str, str], float] = {}
        self._unsaved: dict[tuple[str, str], float] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS counter_last "
                "(device TEXT, point TEXT, value REAL, PRIMARY KEY (device, point))"
            )
            for device, point, value in self._db.execute("SELECT device, point, value FROM counter_last"):
                self._last[device, point] = value

    def observe(self, device: str, point: str, value: float, rollover: float | None) -> CounterJump | None:
        key = (device, point)
        jump = check_counter(self._last.get(key), value, rollover)
        self._last[key] = self._unsaved[key] = value
        return jump

    def save(self) -> None:
        """Persist the values observed since the last save (one transaction)."""
        if self._db is None or not self._unsaved:
            return
        rows = [(d, p, v) for (d, p), v in self._unsaved.items()]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO counter_last VALUES (?, ?, ?)", rows)
        self._unsaved.clear()

    def close(self) -> None:
        if self._db is not None:
            self.save()
            self._db.close()
