"""The maintenance scheduling loop: one planner pass per interval, on a background thread of every hub replica.

Replicas do not coordinate beyond the database: each pass claims plans and tasks with ``SKIP LOCKED``, and the
unique (plan, due date) and notification dedupe keys refuse anything a concurrent pass already did (that pass
is then rolled back whole and the next one finds nothing left to do).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from cloud.db import session_factory, transaction
from cloud.maintenance.planner import PlannerRun, run_planner
from cloud.workers import PeriodicWorker

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MaintenanceWorker(PeriodicWorker):
    """Generates maintenance tasks ahead of time and sends their reminders."""

    name = "maintenance-worker"

    def __init__(self, engine: Engine, interval_s: float = 60.0, clock: Callable[[], datetime] = _utcnow) -> None:
        self._sessions = session_factory(engine)
        super().__init__(interval_s)
        self._clock = clock

    def run_once(self) -> PlannerRun:
        with transaction(self._sessions) as session:
            result = run_planner(session, self._clock())
        if result.created or result.reminded or result.overdue:
            log.info(
                "maintenance: %d tasks generated, %d reminders, %d overdue notices",
                result.created, result.reminded, result.overdue,
            )  # fmt: skip
        return result
