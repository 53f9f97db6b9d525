"""Doing a maintenance task: every inspection item gets a result; a failed check or a reading outside its
acceptable range opens one ticket for the equipment, a passed task opens none, and bad input changes nothing."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.auth.models import Role, User
from cloud.db import session_factory
from cloud.maintenance.models import EquipmentType, MaintenanceTask, TaskState
from cloud.maintenance.planner import run_planner
from cloud.maintenance.schemas import ResultIn, TaskCompletion
from cloud.maintenance.services import MaintenanceError, complete_task
from cloud.tickets.models import Category, Source, Ticket, TicketState
from cloud.tickets.technicians import upsert_technician
from tests.cloud.api.hub_app import add_user
from tests.cloud.maintenance.conftest import CREATED, Plant, make_plan

DONE_AT = CREATED + timedelta(hours=2)


@pytest.fixture
def task_id(plant: Plant) -> int:
    """One open task of the pump's weekly plan; the technician is a plumber on duty at the site."""
    with session_factory(plant.engine).begin() as session:
        make_plan(plant, session, starts_on=date(2026, 3, 2))
        run_planner(session, CREATED)
        upsert_technician(session, session.get_one(User, plant.technician_id), plant.site_id,
                          skills=[Category.PLUMBING])  # fmt: skip
        return session.scalars(select(MaintenanceTask.id)).one()


def completion(session: Session, plant: Plant, pressure: str, seal_ok: bool, note: str = "") -> TaskCompletion:
    pressure_item, seal_item = session.get_one(EquipmentType, plant.type_id).items
    return TaskCompletion(
        results=[ResultIn(item_id=pressure_item.id, reading=Decimal(pressure)),
                 ResultIn(item_id=seal_item.id, passed=seal_ok, note=note)],
        notes="例行保养",
    )  # fmt: skip


def do(plant: Plant, task_id: int, pressure: str, seal_ok: bool, *, by: int | None = None, note: str = "") -> None:
    with session_factory(plant.engine).begin() as session:
        user = session.get_one(User, by or plant.technician_id)
        complete_task(session, task_id, user, completion(session, plant, pressure, seal_ok, note), DONE_AT)


def tickets(plant: Plant) -> list[Ticket]:
    with plant.session() as session:
        return list(session.scalars(select(Ticket)))


def the_task(plant: Plant, task_id: int) -> MaintenanceTask:
    with plant.session() as session:
        return session.get_one(MaintenanceTask, task_id)


def test_a_passed_task_opens_no_ticket(plant: Plant, task_id: int) -> None:
    do(plant, task_id, "450", seal_ok=True)  # the upper bound itself is acceptable
    task = the_task(plant, task_id)
    assert (task.state, task.ticket_id, task.done_by_id) == (TaskState.PASSED, None, plant.technician_id)
    assert [(r.passed, r.reading) for r in task.results] == [(True, Decimal("450")), (True, None)]
    assert tickets(plant) == []


def test_a_reading_outside_the_range_opens_a_ticket_sent_to_a_plumber(plant: Plant, task_id: int) -> None:
    do(plant, task_id, "180.5", seal_ok=True)
    task = the_task(plant, task_id)
    [ticket] = tickets(plant)
    assert task.state is TaskState.FAILED and task.ticket_id == ticket.id
    assert (ticket.source, ticket.equipment_id, ticket.category) == (Source.MAINTENANCE, plant.pump_id,
                                                                     Category.PLUMBING)  # fmt: skip
    assert "出口压力：读数 180.5kPa，超出允许范围 250～450kPa" in ticket.description
    assert "机械密封" not in ticket.description, "only the failed items"
    assert ticket.state is TicketState.ASSIGNED, "dispatched at once to the technician with the skill"
    with pytest.raises(MaintenanceError, match="already done") as refused:
        do(plant, task_id, "300", seal_ok=True)
    assert refused.value.status == 409
    assert len(tickets(plant)) == 1 and the_task(plant, task_id).state is TaskState.FAILED, "done once"


def test_a_failed_check_opens_a_ticket_with_the_technicians_note(plant: Plant, task_id: int) -> None:
    do(plant, task_id, "300", seal_ok=False, note="轴封滴水")
    [ticket] = tickets(plant)
    assert "机械密封无渗漏：不合格（轴封滴水）" in ticket.description
    assert the_task(plant, task_id).ticket_id == ticket.id


def test_incomplete_results_are_refused_and_change_nothing(plant: Plant, task_id: int) -> None:
    with session_factory(plant.engine).begin() as session:
        pressure_item, seal_item = session.get_one(EquipmentType, plant.type_id).items
        pressure, seal = ResultIn(item_id=pressure_item.id, reading=Decimal("300")), ResultIn(item_id=seal_item.id,
                                                                                              passed=True)  # fmt: skip
        cases = [
            ([pressure], "results missing for: 机械密封无渗漏"),
            ([ResultIn(item_id=pressure_item.id), seal], "needs a reading in kPa"),
            ([pressure, ResultIn(item_id=seal_item.id)], "needs passed: true or false"),
            (
                [pressure, seal, ResultIn(item_id=99999, passed=True)],
                "is not an inspection item of this task's standard",
            ),
            ([pressure, seal, seal], "has two results"),
        ]
        user = session.get_one(User, plant.technician_id)
        for results, message in cases:
            with pytest.raises(MaintenanceError, match=message) as refused:
                complete_task(session, task_id, user, TaskCompletion(results=results), DONE_AT)
            assert refused.value.status == 422
    task = the_task(plant, task_id)
    assert (task.state, task.results, task.done_at) == (TaskState.OPEN, [], None)


def test_only_the_assignee_or_an_engineer_may_do_a_task(plant: Plant, task_id: int) -> None:
    with session_factory(plant.engine).begin() as session:
        other = add_user(session, "tech2", Role.TECHNICIAN, sites=[plant.site_id]).id
    with pytest.raises(MaintenanceError, match="only the assigned technician") as refused:
        do(plant, task_id, "300", seal_ok=True, by=other)
    assert refused.value.status == 403
    do(plant, task_id, "300", seal_ok=True, by=plant.engineer_id)
    assert the_task(plant, task_id).done_by_id == plant.engineer_id
    with plant.session() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
