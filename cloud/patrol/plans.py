"""Turning plans into rounds ahead of time, idempotently.

Calendar logic is in Asia/Shanghai: a plan's shift starts on matching local days at a local time, and ends
the next day when its end time is not later than its start (a night shift, 22:00-06:00). Within a shift a
round starts every ``round_every_min`` minutes while a whole round still fits before the shift ends.

Generation may run on several hub processes at once and again and again: ``(plan_id, starts_at)`` is unique
and rows are inserted with ON CONFLICT DO NOTHING, so each round exists once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.patrol.models import PatrolPlan, PatrolRound, PatrolRoute, Recurrence, RoundCheckpoint, RouteStop
from cloud.timeseries.query import DEFAULT_TZ

log = logging.getLogger(__name__)
TZ = ZoneInfo(DEFAULT_TZ)
HORIZON_DAYS = 2


class PlanError(ValueError):
    """A plan that cannot produce sensible rounds; the message names the field to fix."""


@dataclass(frozen=True)
class Window:
    opens_at: datetime
    due_from: datetime
    due_until: datetime
    closes_at: datetime


def validate(plan: PatrolPlan) -> None:
    if plan.recurrence is Recurrence.EVERY_N_DAYS and plan.every_n_days < 1:
        raise PlanError("every_n_days must be at least 1")
    if plan.round_minutes < 1 or plan.round_every_min < plan.round_minutes:
        raise PlanError("round_every_min must be at least round_minutes, and round_minutes at least 1")
    if plan.tolerance_min < 0 or plan.grace_min < 0:
        raise PlanError("tolerance_min and grace_min cannot be negative")
    if plan.end_date is not None and plan.end_date < plan.start_date:
        raise PlanError("end_date is before start_date")
    if not plan.assignees:
        raise PlanError("assign a guard or a team (assignees)")
    if _shift_length(plan) < timedelta(minutes=plan.round_minutes):
        raise PlanError("the shift is shorter than one round")


def _shift_length(plan: PatrolPlan) -> timedelta:
    day = date(2001, 1, 1)
    start, end = datetime.combine(day, plan.shift_start), datetime.combine(day, plan.shift_end)
    return end - start if end > start else end + timedelta(days=1) - start


def runs_on(plan: PatrolPlan, day: date) -> bool:
    """Whether a shift of the plan starts on this local day."""
    if day < plan.start_date or (plan.end_date is not None and day > plan.end_date):
        return False
    if plan.recurrence is Recurrence.WEEKDAYS:
        return day.weekday() < 5
    if plan.recurrence is Recurrence.EVERY_N_DAYS:
        return (day - plan.start_date).days % plan.every_n_days == 0
    return True


def round_starts(plan: PatrolPlan, first_day: date, last_day: date) -> Iterator[datetime]:
    """UTC start of every round of shifts starting on local days first_day..last_day."""
    day = first_day
    while day <= last_day:
        if runs_on(plan, day):
            shift_start = datetime.combine(day, plan.shift_start, TZ).astimezone(UTC)
            shift_end = shift_start + _shift_length(plan)
            start = shift_start
            while start + timedelta(minutes=plan.round_minutes) <= shift_end:
                yield start
                start += timedelta(minutes=plan.round_every_min)
        day += timedelta(days=1)


def windows(plan: PatrolPlan, ordered: bool, starts_at: datetime, walks_s: Sequence[int]) -> list[Window]:
    """Each stop's windows. Ordered routes: on time within ``tolerance_min`` of the expected arrival (start
    plus the walking times so far). Unordered: on time anywhere in the round. Then late for ``grace_min``."""
    ends_at = starts_at + timedelta(minutes=plan.round_minutes)
    tolerance, grace = timedelta(minutes=plan.tolerance_min), timedelta(minutes=plan.grace_min)
    result: list[Window] = []
    elapsed = 0
    for walk in walks_s:
        elapsed += walk
        if ordered:
            due = starts_at + timedelta(seconds=elapsed)
            due_from, due_until = max(starts_at, due - tolerance), due + tolerance
        else:
            due_from, due_until = starts_at, ends_at
        result.append(Window(starts_at, due_from, due_until, due_until + grace))
    return result


def dialect_insert(session: Session, model: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT DO NOTHING on the session's backend."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def generate(session: Session, plan: PatrolPlan, first_day: date, last_day: date, not_before: datetime) -> int:
    """Create the plan's rounds for shifts starting on first_day..last_day that start at or after
    ``not_before``; returns how many were new."""
    route = session.get_one(PatrolRoute, plan.route_id)
    stops = session.scalars(select(RouteStop).where(RouteStop.route_id == route.id).order_by(RouteStop.position)).all()
    if not stops:
        raise PlanError(f"route {route.name!r} has no checkpoints")
    guard = plan.assignees[0] if len(plan.assignees) == 1 else None
    created = 0
    for starts_at in round_starts(plan, first_day, last_day):
        if starts_at < not_before:
            continue
        stmt = (
            dialect_insert(session, PatrolRound)
            .values(
                site_id=plan.site_id,
                plan_id=plan.id,
                route_id=route.id,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=plan.round_minutes),
                assignees=list(plan.assignees),
                guard_id=guard,
                ordered=route.ordered,
                ticket_on_miss=plan.ticket_on_miss,
            )  # fmt: skip
            .on_conflict_do_nothing(index_elements=["plan_id", "starts_at"])
            .returning(PatrolRound.id)
        )
        round_id = session.scalar(stmt)
        if round_id is None:
            continue
        spans = windows(plan, route.ordered, starts_at, [s.walk_s for s in stops])
        session.execute(
            insert(RoundCheckpoint),
            [
                {
                    "site_id": plan.site_id,
                    "round_id": round_id,
                    "checkpoint_id": stop.checkpoint_id,
                    "position": stop.position,
                    "opens_at": w.opens_at,
                    "due_from": w.due_from,
                    "due_until": w.due_until,
                    "closes_at": w.closes_at,
                }  # fmt: skip
                for stop, w in zip(stops, spans, strict=True)
            ],
        )
        created += 1
    return created


def generate_ahead(session: Session, now: datetime, horizon_days: int = HORIZON_DAYS) -> int:
    """Rounds of every active plan from now to ``horizon_days`` ahead (yesterday's shifts included, for
    night shifts still running)."""
    today = now.astimezone(TZ).date()
    created = 0
    for plan in session.scalars(select(PatrolPlan).where(PatrolPlan.active)).all():
        try:
            created += generate(session, plan, today - timedelta(days=1), today + timedelta(days=horizon_days), now)
        except PlanError as exc:  # one broken plan (its route emptied) must not stop the others or the sweep
            log.warning("patrol plan %d (%s) generates no rounds: %s", plan.id, plan.name, exc)
    return created
