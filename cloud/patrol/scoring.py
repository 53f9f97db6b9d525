"""Scoring one checkpoint of a round: on time, early, late, missed or out of order.

Out of order applies to ordered routes only: a checkpoint scanned after one that comes later in the route
(A, C, B scores B out of order: the guard went past it). It outranks the timing result, since the route
was not walked as planned; the scan still counts as a visit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from cloud.patrol.models import CheckpointResult, RoundCheckpoint


def timing(rc: RoundCheckpoint, scanned_at: datetime) -> CheckpointResult | None:
    """The timing result of a scan at ``scanned_at``; None when it is outside the checkpoint's window."""
    if scanned_at < rc.opens_at or scanned_at > rc.closes_at:
        return None
    if scanned_at < rc.due_from:
        return CheckpointResult.EARLY
    if scanned_at <= rc.due_until:
        return CheckpointResult.ON_TIME
    return CheckpointResult.LATE


def score(
    rc: RoundCheckpoint, scanned_at: datetime, ordered: bool, others: Iterable[RoundCheckpoint]
) -> CheckpointResult:
    """The result of the round's first valid scan of ``rc`` (inside its window), given the round's other
    checkpoints as they stand."""
    result = timing(rc, scanned_at)
    if result is None:
        raise ValueError("scan outside the checkpoint's window")
    if ordered and any(
        o.position > rc.position and o.scanned_at is not None and o.scanned_at <= scanned_at for o in others
    ):
        return CheckpointResult.OUT_OF_ORDER
    return result


def lateness_s(rc: RoundCheckpoint) -> int:
    """Seconds after the on-time window that the counted scan came (0 when not late)."""
    if rc.scanned_at is None or rc.scanned_at <= rc.due_until:
        return 0
    return int((rc.scanned_at - rc.due_until).total_seconds())
