"""The planner: tasks appear ahead of their due dates on the Shanghai calendar, exactly once, with one reminder
before and one notice after the due date; several replicas never generate the same task twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, func, select

from cloud.db import make_engine, session_factory
from cloud.maintenance.models import MaintenancePlan, MaintenanceTask, PeriodUnit, TaskState
from cloud.maintenance.planner import add_period, due_dates, local_date, run_planner
from cloud.maintenance.worker import MaintenanceWorker
from cloud.notify.models import Notification
from cloud.schema import create_schema
from tests.cloud.maintenance.conftest import CREATED, Plant, make_plan, seed_plant


def due_days(plant: Plant) -> list[date]:
    with plant.session() as session:
        return list(session.scalars(select(MaintenanceTask.due_on).order_by(MaintenanceTask.due_on)))


def notifications(plant: Plant) -> list[tuple[str, int | None]]:
    with plant.session() as session:
        return list(session.execute(select(Notification.kind, Notification.user_id).order_by(Notification.id)))


def run(plant: Plant, now: datetime) -> tuple[int, int, int]:
    with session_factory(plant.engine).begin() as session:
        result = run_planner(session, now)
    return result.created, result.reminded, result.overdue


def test_a_weekly_plan_generates_its_tasks_ahead_of_time_and_only_once(plant: Plant) -> None:
    with session_factory(plant.engine).begin() as session:
        make_plan(plant, session, starts_on=date(2026, 3, 2), lead_days=3)

    assert run(plant, CREATED)[0] == 1
    assert due_days(plant) == [date(2026, 3, 2)], "only the date within the 3-day lead time"
    assert run(plant, CREATED)[0] == 0, "a second run on the same day creates nothing"
    assert run(plant, CREATED + timedelta(hours=5))[0] == 0

    assert run(plant, CREATED + timedelta(days=5))[0] == 1  # 6 March: horizon 9 March
    assert due_days(plant) == [date(2026, 3, 2), date(2026, 3, 9)]
    assert run(plant, CREATED + timedelta(days=26))[0] == 3, "a planner down for three weeks catches up"
    assert due_days(plant) == [date(2026, 3, d) for d in (2, 9, 16, 23, 30)]
    with plant.session() as session:
        task = session.scalars(select(MaintenanceTask).order_by(MaintenanceTask.id)).first()
        assert task is not None
        assert (task.state, task.assignee_id, task.equipment_id) == (TaskState.OPEN, plant.technician_id,
                                                                     plant.pump_id)  # fmt: skip


def test_a_new_plan_does_not_backfill_dates_before_it_was_made(plant: Plant) -> None:
    with session_factory(plant.engine).begin() as session:
        make_plan(plant, session, starts_on=date(2026, 1, 5), lead_days=7)  # Mondays since January
    run(plant, CREATED)
    assert due_days(plant) == [date(2026, 3, 2)], "not the eight Mondays before 1 March"


def test_monthly_dates_keep_their_day_and_clamp_to_short_months() -> None:
    plan = MaintenancePlan(starts_on=date(2026, 1, 31), period_unit=PeriodUnit.MONTH, period_count=1)
    assert list(due_dates(plan, date(2026, 1, 1), date(2026, 5, 31))) == [
        date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31)
    ]  # fmt: skip
    assert add_period(date(2026, 11, 15), PeriodUnit.MONTH, 3) == date(2027, 2, 15)
    assert add_period(date(2026, 3, 2), PeriodUnit.DAY, 10) == date(2026, 3, 12)


def test_the_calendar_is_shanghais_not_utcs(plant: Plant) -> None:
    with session_factory(plant.engine).begin() as session:
        make_plan(plant, session, starts_on=date(2026, 3, 3), lead_days=0, unit=PeriodUnit.DAY)
    late_utc_evening = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # 00:30 on 3 March in Shanghai
    assert local_date(late_utc_evening) == date(2026, 3, 3)
    run(plant, late_utc_evening)
    assert due_days(plant) == [date(2026, 3, 3)]


def test_the_technician_is_reminded_once_before_and_told_once_when_overdue(plant: Plant) -> None:
    with session_factory(plant.engine).begin() as session:
        make_plan(plant, session, starts_on=date(2026, 3, 3), lead_days=3, remind_days=1)
    assert run(plant, CREATED) == (1, 0, 0), "due 3 March: too early to remind on 1 March"
    assert run(plant, CREATED + timedelta(days=1)) == (0, 1, 0)
    assert run(plant, CREATED + timedelta(days=1, hours=3)) == (0, 0, 0)
    assert run(plant, CREATED + timedelta(days=3)) == (0, 0, 1), "4 March: the task is late"
    assert run(plant, CREATED + timedelta(days=3)) == (0, 0, 0)
    assert notifications(plant) == [("maintenance.due_soon", plant.technician_id),
                                    ("maintenance.overdue", plant.technician_id)]  # fmt: skip


def test_the_worker_runs_a_pass_with_its_clock(plant: Plant) -> None:
    with session_factory(plant.engine).begin() as session:
        make_plan(plant, session, starts_on=date(2026, 3, 2), lead_days=3)
    worker = MaintenanceWorker(plant.engine, clock=lambda: CREATED)
    assert worker.run_once().created == 1
    assert worker.run_once().created == 0


def test_two_replicas_planning_at_once_never_make_a_task_twice(pg_url: str) -> None:
    """On PostgreSQL a replica skips the plans another one holds; the unique (plan, due date) is the backstop."""
    engine: Engine = make_engine(pg_url)
    try:
        create_schema(engine)
        plant_ = seed_plant(engine)
        with session_factory(engine).begin() as session:
            for _ in range(3):
                make_plan(plant_, session, starts_on=date(2026, 3, 2), lead_days=10)
        first, second = session_factory(engine)(), session_factory(engine)()
        with first.begin(), second.begin():
            created_first = run_planner(first, CREATED).created
            created_second = run_planner(second, CREATED).created
        assert (created_first, created_second) == (6, 0)
        with session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(MaintenanceTask)) == 6
    finally:
        engine.dispose()
