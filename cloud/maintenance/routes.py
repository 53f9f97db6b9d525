"""Maintenance API: standards per equipment type, plans, and tasks (list, read, complete).

Staff of a site read its standards and plans; engineers and admins write them. Technicians see and do the
tasks assigned to them; engineers and admins every task of their sites. Everything goes through ``Scope``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile, status
from sqlalchemy import select

from cloud.api.deps import ASSET_EDITORS, OPERATIONS, STAFF, CurrentUser, ScopeDep, SessionDep, require_roles
from cloud.auth.models import Role
from cloud.auth.services import actor
from cloud.maintenance import photos, services
from cloud.maintenance.models import EquipmentType, MaintenancePlan, MaintenanceTask, TaskState
from cloud.maintenance.schemas import (
    EquipmentTypeIn,
    EquipmentTypePublic,
    PlanIn,
    PlanPublic,
    TaskCompletion,
    TaskPublic,
)
from cloud.registry.models import Equipment, Site
from cloud.tickets.routes import StoreDep

router = APIRouter(prefix="/maintenance", tags=["maintenance"])
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/types", dependencies=[Depends(require_roles(*STAFF))])
def list_types(session: SessionDep, scope: ScopeDep, site_id: int | None = None) -> list[EquipmentTypePublic]:
    stmt = select(EquipmentType).where(scope.where(EquipmentType)).order_by(EquipmentType.site_id, EquipmentType.code)
    if site_id is not None:
        stmt = stmt.where(EquipmentType.site_id == site_id)
    return [EquipmentTypePublic.model_validate(row) for row in session.scalars(stmt)]


@router.post("/types", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_roles(*ASSET_EDITORS))])
def create_type(data: EquipmentTypeIn, session: SessionDep, scope: ScopeDep, user: CurrentUser) -> EquipmentTypePublic:
    scope.get(session, Site, data.site_id)
    return EquipmentTypePublic.model_validate(services.create_type(session, actor(user), data))


@router.get("/plans", dependencies=[Depends(require_roles(*STAFF))])
def list_plans(session: SessionDep, scope: ScopeDep, equipment_id: int | None = None) -> list[PlanPublic]:
    stmt = select(MaintenancePlan).where(scope.where(MaintenancePlan)).order_by(MaintenancePlan.id)
    if equipment_id is not None:
        stmt = stmt.where(MaintenancePlan.equipment_id == equipment_id)
    return [PlanPublic.model_validate(row) for row in session.scalars(stmt)]


@router.post("/plans", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_roles(*ASSET_EDITORS))])
def create_plan(data: PlanIn, session: SessionDep, scope: ScopeDep, user: CurrentUser) -> PlanPublic:
    equipment = scope.get(session, Equipment, data.equipment_id)
    plan = services.create_plan(session, actor(user), equipment, data, datetime.now(UTC))
    return PlanPublic.model_validate(plan)


@router.get("/tasks", dependencies=[Depends(require_roles(*OPERATIONS))])
def list_tasks(
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    state: TaskState | None = None,
    equipment_id: int | None = None,
    limit: Limit = 200,
) -> list[TaskPublic]:
    """Technicians get their own tasks; engineers and admins every task of their sites. Soonest due first."""
    stmt = select(MaintenanceTask).where(scope.where(MaintenanceTask))
    if user.role is Role.TECHNICIAN:
        stmt = stmt.where(MaintenanceTask.assignee_id == user.id)
    if state is not None:
        stmt = stmt.where(MaintenanceTask.state == state)
    if equipment_id is not None:
        stmt = stmt.where(MaintenanceTask.equipment_id == equipment_id)
    rows = session.scalars(stmt.order_by(MaintenanceTask.due_on, MaintenanceTask.id).limit(limit))
    return [TaskPublic.model_validate(row) for row in rows]


def _visible_task(session: SessionDep, scope: ScopeDep, user: CurrentUser, task_id: int) -> MaintenanceTask:
    task = scope.get(session, MaintenanceTask, task_id)
    if user.role is Role.TECHNICIAN and task.assignee_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"maintenance task {task_id} not found")
    return task


@router.get("/tasks/{task_id}", dependencies=[Depends(require_roles(*OPERATIONS))])
def get_task(task_id: int, session: SessionDep, scope: ScopeDep, user: CurrentUser) -> TaskPublic:
    return TaskPublic.model_validate(_visible_task(session, scope, user, task_id))


@router.post("/tasks/{task_id}/complete", dependencies=[Depends(require_roles(*OPERATIONS))])
def complete_task(
    task_id: int, data: TaskCompletion, session: SessionDep, scope: ScopeDep, user: CurrentUser
) -> TaskPublic:
    """Record every item's result; a failed check or an out-of-range reading opens a ticket (``ticket_id``)."""
    _visible_task(session, scope, user, task_id)
    task, _ = services.complete_task(session, task_id, user, data, datetime.now(UTC))
    return TaskPublic.model_validate(task)


@router.post(
    "/tasks/{task_id}/photos", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_roles(*OPERATIONS))]
)
def upload_photo(
    task_id: int,
    photo: Annotated[UploadFile, File()],
    session: SessionDep,
    scope: ScopeDep,
    user: CurrentUser,
    store: StoreDep,
) -> TaskPublic:
    """A JPEG, PNG or WebP photo of the work (checked by its content, as ticket photos are)."""
    _visible_task(session, scope, user, task_id)
    data = photo.file.read(store.max_bytes + 1)
    photos.add_photo(session, store, task_id, user, photo.filename or "photo", data, datetime.now(UTC))
    return TaskPublic.model_validate(session.get_one(MaintenanceTask, task_id))
