"""Maintenance changes: standards per equipment type, plans, and doing a task.

Doing a task records one result per inspection item of the equipment type's standard. A check marked failed or
a reading outside its acceptable range fails the task, and a failed task opens one ticket for the equipment
through the tickets service (deduplicated per task, so a retried request never opens a second one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from cloud.audit.services import Actor, Change, record
from cloud.auth.models import Role, User, user_sites
from cloud.maintenance.models import (
    EquipmentType,
    InspectionItem,
    ItemKind,
    MaintenancePlan,
    MaintenanceTask,
    TaskResult,
    TaskState,
)
from cloud.maintenance.schemas import EquipmentTypeIn, PlanIn, TaskCompletion
from cloud.registry.models import Equipment
from cloud.tickets.models import Ticket
from cloud.tickets.services import open_from_maintenance

DOERS = (Role.ADMIN, Role.ENGINEER, Role.TECHNICIAN)
"""Who can be responsible for a plan and do its tasks."""


class MaintenanceError(ValueError):
    """A change that cannot be made; the message says what to fix. ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Failure:
    item: InspectionItem
    reading: Decimal | None
    note: str

    def describe(self) -> str:
        """One line for the ticket, in the user-facing language (zh-CN)."""
        if self.item.kind is ItemKind.CHECK:
            text = f"{self.item.name}：不合格"
        else:
            low = "-∞" if self.item.min_value is None else _plain(self.item.min_value)
            high = "+∞" if self.item.max_value is None else _plain(self.item.max_value)
            unit = self.item.unit or ""
            text = f"{self.item.name}：读数 {_plain(self.reading)}{unit}，超出允许范围 {low}～{high}{unit}"
        return f"{text}（{self.note}）" if self.note else text


def _plain(value: Decimal | None) -> str:
    if value is None:
        return "-"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def create_type(session: Session, by: Actor, data: EquipmentTypeIn) -> EquipmentType:
    if session.scalar(select(exists().where(EquipmentType.site_id == data.site_id, EquipmentType.code == data.code))):
        raise MaintenanceError(f"equipment type {data.code!r} already has a standard at this site", 409)
    row = EquipmentType(
        site_id=data.site_id, code=data.code, name=data.name, period_unit=data.period_unit,
        period_count=data.period_count,
        items=[InspectionItem(position=n, **item.model_dump()) for n, item in enumerate(data.items, start=1)],
    )  # fmt: skip
    session.add(row)
    session.flush()
    record(session, by, [Change("create", "maintenance_type", row.id, row.code, None, data.model_dump(),
                                site_id=row.site_id)])  # fmt: skip
    return row


def _check_responsible(session: Session, user_id: int, site_id: int) -> None:
    user = session.get(User, user_id)
    if user is None or not user.is_active or user.role not in DOERS:
        raise MaintenanceError(f"user {user_id} cannot be responsible: it must be an active technician, engineer "
                               "or admin")  # fmt: skip
    if not user.all_sites and not session.scalar(
        select(exists().where(user_sites.c.user_id == user_id, user_sites.c.site_id == site_id))
    ):
        raise MaintenanceError(f"user {user.username} does not work at this equipment's site")


def create_plan(session: Session, by: Actor, equipment: Equipment, data: PlanIn, now: datetime) -> MaintenancePlan:
    """A plan for ``equipment`` (already checked against the caller's scope) under its type's standard."""
    kind = session.scalars(
        select(EquipmentType).where(EquipmentType.site_id == equipment.site_id, EquipmentType.code == equipment.type)
    ).first()
    if kind is None:
        raise MaintenanceError(f"there is no maintenance standard for equipment type {equipment.type!r} at this "
                               "site: create the type with its inspection items first")  # fmt: skip
    _check_responsible(session, data.responsible_id, equipment.site_id)
    plan = MaintenancePlan(
        site_id=equipment.site_id, equipment_id=equipment.id, type_id=kind.id, name=data.name,
        period_unit=data.period_unit or kind.period_unit, period_count=data.period_count or kind.period_count,
        starts_on=data.starts_on, lead_days=data.lead_days, remind_days=data.remind_days,
        responsible_id=data.responsible_id, active=True, generated_through=None, created_at=now,
    )  # fmt: skip
    session.add(plan)
    session.flush()
    record(session, by, [Change("create", "maintenance_plan", plan.id, plan.name, None, data.model_dump(),
                                site_id=plan.site_id)], at=now)  # fmt: skip
    return plan


def may_do(user: User, task: MaintenanceTask) -> bool:
    """Technicians do their own tasks; engineers and admins of the site may do any (scope is checked before)."""
    return user.role in (Role.ADMIN, Role.ENGINEER) or (user.role is Role.TECHNICIAN and task.assignee_id == user.id)


def _evaluate(items: list[InspectionItem], data: TaskCompletion) -> tuple[list[TaskResult], list[Failure]]:
    by_id = {item.id: item for item in items}
    seen: set[int] = set()
    results: list[TaskResult] = []
    failures: list[Failure] = []
    for given in data.results:
        item = by_id.get(given.item_id)
        if item is None:
            raise MaintenanceError(f"item {given.item_id} is not an inspection item of this task's standard")
        if item.id in seen:
            raise MaintenanceError(f"item {item.name!r} has two results: give one")
        seen.add(item.id)
        if item.kind is ItemKind.READING:
            if given.reading is None:
                raise MaintenanceError(
                    f"item {item.name!r} needs a reading" + (f" in {item.unit}" if item.unit else "")
                )
            passed = item.accepts(given.reading)
        else:
            if given.passed is None:
                raise MaintenanceError(f"item {item.name!r} needs passed: true or false")
            passed = given.passed
        results.append(TaskResult(item_id=item.id, passed=passed, reading=given.reading, note=given.note))
        if not passed:
            failures.append(Failure(item, given.reading, given.note))
    if missing := [item.name for item in items if item.id not in seen]:
        raise MaintenanceError(f"results missing for: {', '.join(missing)}")
    return results, failures


def _open_fault_ticket(
    session: Session, task: MaintenanceTask, plan: MaintenancePlan, failures: list[Failure], by: User, now: datetime
) -> Ticket:
    """One ticket per failed task, listing every failed item; the equipment type decides the skill it needs."""
    equipment = session.get_one(Equipment, task.equipment_id)
    lines = [f"保养任务 #{task.id}（{plan.name}，应于 {task.due_on.isoformat()} 完成）检查不合格："]
    lines += [f"- {failure.describe()}" for failure in failures]
    if task.notes:
        lines.append(f"备注：{task.notes}")
    return open_from_maintenance(
        session, site_id=task.site_id, equipment_id=equipment.id, check_ref=f"task:{task.id}",
        title=f"保养不合格：{equipment.name}（{equipment.code}）"[:200], description="\n".join(lines), now=now,
        reporter_id=by.id,
    )  # fmt: skip


def lock_task(session: Session, task_id: int) -> MaintenanceTask:
    """The task row, locked for this transaction, so two people completing it at once are served in turn."""
    task = session.scalars(
        select(MaintenanceTask)
        .where(MaintenanceTask.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return task


def complete_task(
    session: Session, task_id: int, by: User, data: TaskCompletion, now: datetime
) -> tuple[MaintenanceTask, list[Failure]]:
    """Record the task's results; a failure opens a ticket (see the module docstring). 409 if already done."""
    task = lock_task(session, task_id)
    if not may_do(by, task):
        raise MaintenanceError("only the assigned technician, an engineer or an admin may do this task", 403)
    if task.state is not TaskState.OPEN:
        raise MaintenanceError(f"task {task.id} was already done ({task.state.value}); results cannot change", 409)
    plan = session.get_one(MaintenancePlan, task.plan_id)
    items = list(session.get_one(EquipmentType, plan.type_id).items)
    results, failures = _evaluate(items, data)
    task.results = results
    task.notes = data.notes
    task.done_at = now
    task.done_by_id = by.id
    task.state = TaskState.FAILED if failures else TaskState.PASSED
    session.flush()
    if failures:
        task.ticket_id = _open_fault_ticket(session, task, plan, failures, by, now).id
    record(
        session, Actor(by.username, by.id),
        [Change("update", "maintenance_task", task.id, f"{plan.name} {task.due_on.isoformat()}",
                {"state": TaskState.OPEN.value}, {"state": task.state.value, "ticket_id": task.ticket_id},
                site_id=task.site_id)],
        at=now,
    )  # fmt: skip
    return task, failures
