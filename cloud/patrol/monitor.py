"""Live miss detection: the moment a checkpoint's window closes unscanned, it is marked missed and the
round's guards and the site's supervisors are alerted (and a ticket opened where the plan asks for one).

The worker does not poll on a fixed beat: it sleeps until the earliest pending ``closes_at`` (at most
``MAX_SLEEP``, so rounds generated meanwhile are seen). Several hub replicas can run it: each sweep claims
overdue checkpoints with FOR UPDATE SKIP LOCKED, and every notification has a unique dedupe key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from cloud.auth.models import Role, User, user_sites
from cloud.db import session_factory, transaction
from cloud.notify.services import notify
from cloud.patrol.models import Checkpoint, CheckpointResult, PatrolPlan, PatrolRound, PatrolRoute, RoundCheckpoint
from cloud.patrol.plans import generate_ahead
from cloud.registry.models import Building
from cloud.tickets.services import open_from_patrol
from cloud.timeseries.query import DEFAULT_TZ

log = logging.getLogger(__name__)
MAX_SLEEP = timedelta(seconds=30)
MIN_SLEEP = timedelta(milliseconds=200)
GENERATE_EVERY = timedelta(minutes=10)
SWEEP_BATCH = 200
TZ = ZoneInfo(DEFAULT_TZ)


def next_deadline(session: Session) -> datetime | None:
    """When the next pending checkpoint window closes."""
    return session.scalar(
        select(func.min(RoundCheckpoint.closes_at)).where(
            RoundCheckpoint.result == CheckpointResult.PENDING, RoundCheckpoint.scan_id.is_(None)
        )
    )


def supervisors(session: Session, site_id: int) -> list[int]:
    """Active admins of the site (or of every site): whom a missed checkpoint is reported to."""
    return list(
        session.scalars(
            select(User.id)
            .outerjoin(user_sites, user_sites.c.user_id == User.id)
            .where(User.role == Role.ADMIN, User.is_active, or_(User.all_sites, user_sites.c.site_id == site_id))
            .distinct()
            .order_by(User.id)
        )
    )


def _describe(session: Session, checkpoint: Checkpoint) -> str:
    parts = [checkpoint.name]
    if checkpoint.building_id is not None:
        parts.append(session.get_one(Building, checkpoint.building_id).name)
    if checkpoint.floor is not None:
        parts.append(f"{checkpoint.floor}层")
    if checkpoint.location:
        parts.append(checkpoint.location)
    return "，".join(parts)


def alert_missed(session: Session, slot: RoundCheckpoint, now: datetime) -> None:
    round_ = session.get_one(PatrolRound, slot.round_id)
    checkpoint = session.get_one(Checkpoint, slot.checkpoint_id)
    route = session.get_one(PatrolRoute, round_.route_id)
    plan = session.get_one(PatrolPlan, round_.plan_id)
    where = _describe(session, checkpoint)
    due = slot.due_until.astimezone(TZ).strftime("%H:%M")
    data = {"round_id": round_.id, "round_checkpoint_id": slot.id, "checkpoint_id": checkpoint.id,
            "route_id": route.id, "plan_id": plan.id, "closes_at": slot.closes_at.isoformat()}  # fmt: skip
    title = f"漏巡：{checkpoint.name}"
    body = f"巡更路线「{route.name}」的巡更点（{where}）应于 {due} 前巡查，窗口已关闭仍未扫码。"
    for user_id in sorted({*round_.assignees, *supervisors(session, slot.site_id)}):
        notify(
            session, kind="patrol.missed", title=title, body=body,
            user_id=user_id, site_id=slot.site_id, data=data, dedupe_key=f"patrol.missed:{slot.id}:{user_id}", now=now,
        )  # fmt: skip
    if round_.ticket_on_miss:
        open_from_patrol(
            session, site_id=slot.site_id, exception_ref=f"missed:{slot.id}", title=title,
            description=f"{body}请核查现场。",
            now=now, building_id=checkpoint.building_id,
        )  # fmt: skip


def sweep(session: Session, now: datetime) -> list[RoundCheckpoint]:
    """Mark every overdue unscanned checkpoint missed and alert; returns those this call claimed."""
    overdue = list(
        session.scalars(
            select(RoundCheckpoint)
            .where(
                RoundCheckpoint.result == CheckpointResult.PENDING,
                RoundCheckpoint.scan_id.is_(None),
                RoundCheckpoint.closes_at <= now,
            )
            .order_by(RoundCheckpoint.closes_at, RoundCheckpoint.id)
            .limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    for slot in overdue:
        slot.result, slot.missed_at = CheckpointResult.MISSED, now
        alert_missed(session, slot, now)
    session.flush()
    return overdue


class PatrolMonitor:
    """The background worker: generates rounds ahead, and sweeps the moment a window closes."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._sessions = session_factory(engine)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._generated_at: datetime | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="patrol-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def run_once(self) -> datetime:
        """One pass; returns when the next pass is due."""
        now = self._clock()
        with transaction(self._sessions) as session:
            if self._generated_at is None or now - self._generated_at >= GENERATE_EVERY:
                generate_ahead(session, now)
                self._generated_at = now
            while len(sweep(session, now)) == SWEEP_BATCH:
                continue
            deadline = next_deadline(session)
        wake = now + MAX_SLEEP if deadline is None else min(now + MAX_SLEEP, deadline)
        return max(wake, now + MIN_SLEEP)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wake = self.run_once()
            except Exception as exc:  # a lost connection or a deadlock victim: nothing was claimed, retry
                log.warning("patrol monitor pass failed, retrying: %s", exc)
                wake = self._clock() + timedelta(seconds=5)
            self._stop.wait(max(0.0, (wake - self._clock()).total_seconds()))
