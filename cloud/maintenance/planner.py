"""The planner: turns plans into tasks ahead of their due dates and reminds the people who must do them.

Everything is keyed on the Asia/Shanghai calendar date of ``now``, which the caller passes (tests use a fixed
clock). Running it twice changes nothing the second time: a task is unique per (plan, due date) and a plan
remembers how far it was generated; reminders are marked on the task and deduplicated in the outbox. With
several hub replicas each claims plans and tasks with ``FOR UPDATE SKIP LOCKED``, so no two work on the same row.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.maintenance.models import MaintenancePlan, MaintenanceTask, PeriodUnit, TaskState
from cloud.notify.services import notify
from cloud.registry.models import Equipment
from cloud.timeseries.query import DEFAULT_TZ

SHANGHAI = ZoneInfo(DEFAULT_TZ)


@dataclass(frozen=True)
class PlannerRun:
    created: int
    reminded: int
    overdue: int


def local_date(now: datetime) -> date:
    return now.astimezone(SHANGHAI).date()


def add_period(start: date, unit: PeriodUnit, count: int) -> date:
    """``start`` plus ``count`` periods; months keep the day of month, clamped to the month's last day."""
    if unit is PeriodUnit.DAY:
        return start + timedelta(days=count)
    if unit is PeriodUnit.WEEK:
        return start + timedelta(weeks=count)
    months = start.month - 1 + count
    year, month = start.year + months // 12, months % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def due_dates(plan: MaintenancePlan, after: date, through: date) -> Iterator[date]:
    """The plan's due dates in (after, through], each counted from ``starts_on`` so months never drift."""
    n = 0
    while (due := add_period(plan.starts_on, plan.period_unit, n * plan.period_count)) <= through:
        if due > after:
            yield due
        n += 1


def _first_after(plan: MaintenancePlan) -> date:
    """Where generation resumes; a new plan does not backfill dates before the day it was made."""
    if plan.generated_through is not None:
        return plan.generated_through
    return max(plan.starts_on, local_date(plan.created_at)) - timedelta(days=1)


def generate_tasks(session: Session, now: datetime) -> int:
    """Create the tasks every active plan has due within its lead time; returns how many were created."""
    today = local_date(now)
    plans = session.scalars(
        select(MaintenancePlan)
        .where(MaintenancePlan.active.is_(True))
        .order_by(MaintenancePlan.id)
        .with_for_update(skip_locked=True)
    ).all()
    created = 0
    for plan in plans:
        horizon = today + timedelta(days=plan.lead_days)
        after = _first_after(plan)
        if horizon <= after:
            continue
        existing = set(
            session.scalars(
                select(MaintenanceTask.due_on).where(
                    MaintenanceTask.plan_id == plan.id,
                    MaintenanceTask.due_on > after,
                    MaintenanceTask.due_on <= horizon,
                )
            )
        )
        for due in due_dates(plan, after, horizon):
            if due in existing:
                continue
            session.add(
                MaintenanceTask(
                    site_id=plan.site_id,
                    plan_id=plan.id,
                    equipment_id=plan.equipment_id,
                    assignee_id=plan.responsible_id,
                    due_on=due,
                    state=TaskState.OPEN,
                    created_at=now,
                    notes="",
                    photos=[],
                )  # fmt: skip
            )
            created += 1
        plan.generated_through = horizon
    session.flush()
    return created


def _open_tasks(session: Session, *conditions: object) -> list[tuple[MaintenanceTask, MaintenancePlan, Equipment]]:
    rows = session.execute(
        select(MaintenanceTask, MaintenancePlan, Equipment)
        .join(MaintenancePlan, MaintenancePlan.id == MaintenanceTask.plan_id)
        .join(Equipment, Equipment.id == MaintenanceTask.equipment_id)
        .where(MaintenanceTask.state == TaskState.OPEN, *conditions)  # type: ignore[arg-type]
        .order_by(MaintenanceTask.id)
        .with_for_update(skip_locked=True, of=MaintenanceTask)
    ).all()
    return [(task, plan, equipment) for task, plan, equipment in rows]


def send_reminders(session: Session, now: datetime) -> tuple[int, int]:
    """Remind the assignee once when a task comes within its plan's reminder days, and once when it is overdue.

    Returns (reminded, overdue).
    """
    today = local_date(now)
    reminded = overdue = 0
    for task, plan, equipment in _open_tasks(session, MaintenanceTask.reminded_at.is_(None)):
        if task.due_on - timedelta(days=plan.remind_days) > today:
            continue
        notify(
            session, kind="maintenance.due_soon", title="设备保养任务即将到期",
            body=f"{equipment.name}（{equipment.code}）：{plan.name}，请于 {task.due_on.isoformat()} 前完成。",
            user_id=task.assignee_id, site_id=task.site_id, data={"task_id": task.id, "equipment_id": equipment.id},
            dedupe_key=f"maintenance.due_soon:{task.id}", now=now,
        )  # fmt: skip
        task.reminded_at = now
        reminded += 1
    late = (MaintenanceTask.overdue_notified_at.is_(None), MaintenanceTask.due_on < today)
    for task, plan, equipment in _open_tasks(session, *late):
        notify(
            session, kind="maintenance.overdue", title="设备保养任务已逾期",
            body=f"{equipment.name}（{equipment.code}）：{plan.name}，应于 {task.due_on.isoformat()} 完成，已逾期。",
            user_id=task.assignee_id, site_id=task.site_id, data={"task_id": task.id, "equipment_id": equipment.id},
            dedupe_key=f"maintenance.overdue:{task.id}", now=now,
        )  # fmt: skip
        task.overdue_notified_at = now
        overdue += 1
    session.flush()
    return reminded, overdue


def run_planner(session: Session, now: datetime) -> PlannerRun:
    """One planner pass in the caller's transaction: generate, then remind."""
    created = generate_tasks(session, now)
    reminded, overdue = send_reminders(session, now)
    return PlannerRun(created=created, reminded=reminded, overdue=overdue)
