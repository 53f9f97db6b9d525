"""Maintenance pages: the plans and tasks overview for staff, doing a task (mobile, for technicians), and the
equipment history that shows telemetry, alarms, tickets and maintenance together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from cloud.alarms.models import Alarm
from cloud.api.deps import OPERATIONS, SessionDep
from cloud.api.scope import Scope
from cloud.auth.models import Role, User
from cloud.console.pages import PageScope, render
from cloud.maintenance import photos, services
from cloud.maintenance.models import EquipmentType, ItemKind, MaintenancePlan, MaintenanceTask, TaskState
from cloud.maintenance.schemas import ResultIn, TaskCompletion
from cloud.portal.common import local, page_roles
from cloud.registry.models import Equipment
from cloud.tickets.models import Ticket
from cloud.tickets.routes import StoreDep

router = APIRouter(prefix="/console", include_in_schema=False)
Operator = Annotated[User, Depends(page_roles(*OPERATIONS))]
HISTORY_ROWS = 100


async def read_form(request: Request) -> FormData:
    """The posted form, whatever its fields (one result per inspection item, named by the item's id)."""
    return await request.form()


Form = Annotated[FormData, Depends(read_form)]


def visible_task(session: Session, scope: Scope, user: User, task_id: int) -> MaintenanceTask:
    """A task in scope; a technician sees only their own (404 otherwise, as for a task that does not exist)."""
    task = scope.get(session, MaintenanceTask, task_id)
    if user.role is Role.TECHNICIAN and task.assignee_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"maintenance task {task_id} not found")
    return task


@dataclass(frozen=True)
class TaskRow:
    task: MaintenanceTask
    plan: MaintenancePlan
    equipment: Equipment
    assignee: str


def task_rows(
    session: Session, scope: Scope, *, assignee_id: int | None, open_only: bool, limit: int = 200
) -> list[TaskRow]:
    """Tasks in scope (only one person's with ``assignee_id``), soonest due first, with plan and equipment."""
    stmt = (
        select(MaintenanceTask, MaintenancePlan, Equipment, User.full_name)
        .join(MaintenancePlan, MaintenancePlan.id == MaintenanceTask.plan_id)
        .join(Equipment, Equipment.id == MaintenanceTask.equipment_id)
        .join(User, User.id == MaintenanceTask.assignee_id)
        .where(scope.where(MaintenanceTask))
    )
    if assignee_id is not None:
        stmt = stmt.where(MaintenanceTask.assignee_id == assignee_id)
    if open_only:
        stmt = stmt.where(MaintenanceTask.state == TaskState.OPEN)
    stmt = stmt.order_by(MaintenanceTask.due_on, MaintenanceTask.id).limit(limit)
    return [TaskRow(t, p, e, name) for t, p, e, name in session.execute(stmt)]


@router.get("/maintenance")
def maintenance_page(request: Request, session: SessionDep, user: Operator, scope: PageScope) -> HTMLResponse:
    types = session.scalars(select(EquipmentType).where(scope.where(EquipmentType)).order_by(EquipmentType.code)).all()
    plans = session.execute(
        select(MaintenancePlan, Equipment, User.full_name)
        .join(Equipment, Equipment.id == MaintenancePlan.equipment_id)
        .join(User, User.id == MaintenancePlan.responsible_id)
        .where(scope.where(MaintenancePlan))
        .order_by(Equipment.code, MaintenancePlan.id)
    ).all()
    return render(
        request, "maint_overview.html", user, types=types, plans=plans,
        tasks=task_rows(session, scope, assignee_id=user.id if user.role is Role.TECHNICIAN else None, open_only=False),
    )  # fmt: skip


@router.get("/maintenance/tasks/{task_id}")
def task_page(request: Request, task_id: int, session: SessionDep, user: Operator, scope: PageScope) -> HTMLResponse:
    return _task_page(request, session, user, scope, task_id)


def _task_page(
    request: Request, session: Session, user: User, scope: Scope, task_id: int, error: str | None = None
) -> HTMLResponse:
    task = visible_task(session, scope, user, task_id)
    plan = session.get_one(MaintenancePlan, task.plan_id)
    kind = session.get_one(EquipmentType, plan.type_id)
    results = {r.item_id: r for r in task.results}
    return render(
        request, "maint_task.html", user, task=task, plan=plan, kind=kind, results=results,
        equipment=session.get_one(Equipment, task.equipment_id), may_do=services.may_do(user, task), error=error,
        local=local,
    )  # fmt: skip


def completion_from_form(items: list[Any], form: FormData) -> TaskCompletion:
    """One result per item: ``check_<id>`` is pass/fail, ``reading_<id>`` a number, ``note_<id>`` optional."""
    results = []
    for item in items:
        note = str(form.get(f"note_{item.id}", "")).strip()
        if item.kind is ItemKind.READING:
            raw = str(form.get(f"reading_{item.id}", "")).strip()
            try:
                reading = Decimal(raw) if raw else None
            except InvalidOperation:
                raise services.MaintenanceError(f"{item.name}: {raw!r} is not a number") from None
            results.append(ResultIn(item_id=item.id, reading=reading, note=note))
        else:
            verdict = form.get(f"check_{item.id}")
            passed = None if verdict not in ("pass", "fail") else verdict == "pass"
            results.append(ResultIn(item_id=item.id, passed=passed, note=note))
    return TaskCompletion(results=results, notes=str(form.get("notes", "")))


@router.post("/maintenance/tasks/{task_id}")
def complete_task(
    request: Request, task_id: int, session: SessionDep, user: Operator, scope: PageScope, form: Form
) -> Response:
    task = visible_task(session, scope, user, task_id)
    plan = session.get_one(MaintenancePlan, task.plan_id)
    items = list(session.get_one(EquipmentType, plan.type_id).items)
    try:
        services.complete_task(session, task.id, user, completion_from_form(items, form), datetime.now(UTC))
    except services.MaintenanceError as exc:
        if exc.status == status.HTTP_403_FORBIDDEN:
            raise HTTPException(exc.status, str(exc)) from None
        response = _task_page(request, session, user, scope, task_id, error=str(exc))
        response.status_code = exc.status
        return response
    return RedirectResponse(f"/console/maintenance/tasks/{task_id}", status_code=status.HTTP_303_SEE_OTHER)


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    kind: str
    """alarm, ticket or maintenance (a text key suffix)."""
    title: str
    state: str
    href: str | None


def equipment_history(session: Session, equipment: Equipment, limit: int = HISTORY_ROWS) -> list[HistoryRow]:
    """Alarms, tickets and maintenance tasks of one piece of equipment, newest first, in one list."""
    rows = [
        HistoryRow(a.raised_at, "alarm", a.title, a.state.value, None)
        for a in session.scalars(
            select(Alarm).where(Alarm.equipment_id == equipment.id).order_by(Alarm.raised_at.desc()).limit(limit)
        )
    ]
    rows += [
        HistoryRow(
            t.created_at, "ticket", f"#{t.id} {t.title}", f"ticket_state_{t.state.value}", f"/console/tickets/{t.id}"
        )  # fmt: skip
        for t in session.scalars(
            select(Ticket).where(Ticket.equipment_id == equipment.id).order_by(Ticket.created_at.desc()).limit(limit)
        )
    ]
    tasks = session.execute(
        select(MaintenanceTask, MaintenancePlan.name)
        .join(MaintenancePlan, MaintenancePlan.id == MaintenanceTask.plan_id)
        .where(MaintenanceTask.equipment_id == equipment.id, MaintenanceTask.state != TaskState.OPEN)
        .order_by(MaintenanceTask.done_at.desc())
        .limit(limit)
    )
    rows += [
        HistoryRow(
            task.done_at or task.created_at,
            "maintenance",
            name,
            f"maint_state_{task.state.value}",
            f"/console/maintenance/tasks/{task.id}",
        )  # fmt: skip
        for task, name in tasks
    ]
    return sorted(rows, key=lambda r: r.at, reverse=True)[:limit]


@router.get("/equipment/{equipment_id}/history")
def history_page(
    request: Request, equipment_id: int, session: SessionDep, user: Operator, scope: PageScope
) -> HTMLResponse:
    item = scope.get(session, Equipment, equipment_id)
    upcoming = session.scalars(
        select(MaintenanceTask)
        .where(MaintenanceTask.equipment_id == item.id, MaintenanceTask.state == TaskState.OPEN)
        .order_by(MaintenanceTask.due_on)
    ).all()
    return render(
        request, "maint_equipment_history.html", user, item=item, rows=equipment_history(session, item),
        upcoming=upcoming, local=local,
    )  # fmt: skip


@router.post("/maintenance/tasks/{task_id}/photo")
def task_photo(
    request: Request,
    task_id: int,
    session: SessionDep,
    user: Operator,
    scope: PageScope,
    store: StoreDep,
    photo: Annotated[UploadFile, File()],
) -> Response:
    visible_task(session, scope, user, task_id)
    try:
        with session.begin_nested():
            photos.add_photo(session, store, task_id, user, photo.filename or "photo",
                             photo.file.read(store.max_bytes + 1), datetime.now(UTC))  # fmt: skip
    except services.MaintenanceError as exc:
        response = _task_page(request, session, user, scope, task_id, error=str(exc))
        response.status_code = exc.status
        return response
    return RedirectResponse(f"/console/maintenance/tasks/{task_id}", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/maintenance/tasks/{task_id}/photos/{index}")
def task_photo_file(
    task_id: int, index: int, session: SessionDep, user: Operator, scope: PageScope, store: StoreDep
) -> Response:
    found = photos.photo_file(store, visible_task(session, scope, user, task_id), index)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"photo {index} of maintenance task {task_id} not found")
    path, content_type = found
    return FileResponse(path, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"})
