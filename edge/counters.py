"""Cumulative-register checks: a counter that goes backwards is reported, never silently "fixed".

Raw values always go upstream unchanged; these checks add an event next to them so the hub (and billing)
can decide what the jump means.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Remembers the last value of every counter point of one agent."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}

    def observe(self, device: str, point: str, value: float, rollover: float | None) -> CounterJump | None:
        key = (device, point)
        jump = check_counter(self._last.get(key), value, rollover)
        self._last[key] = value
        return jump
