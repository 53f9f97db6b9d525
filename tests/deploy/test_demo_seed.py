"""The demo's seeding (deploy/demo_seed.py) on a SQLite hub beside the running simulated site: every printed
login signs in, last month's bills come from the hourly history through the bill-run service, the printed badge
is a valid signed code of the gate's guard, and seeding the same work directory again changes no row."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from cloud.alarms.models import AlarmRule
from cloud.auth.models import Role, User
from cloud.auth.services import authenticate
from cloud.billing.models import Bill, BillRun, RunState
from cloud.db import Base, make_engine, session_factory
from cloud.maintenance.models import MaintenancePlan
from cloud.patrol.keys import verify
from cloud.patrol.models import Checkpoint, CheckpointMethod, PatrolRound
from cloud.registry.models import Equipment
from cloud.schema import create_schema
from cloud.settings import HubSettings
from cloud.tickets.models import Technician
from cloud.timeseries.models import Sample, Series
from deploy.demo import DEMO_SITE
from deploy.demo_seed import Seeded, seed_demo, seed_registry
from firmware_sims.load_shape import DailyShape
from firmware_sims.site import start_site

NOW = datetime(2026, 3, 3, 1, 30, tzinfo=UTC)
"""09:30 on 3 March in Asia/Shanghai: February is over and billable."""
MARCH_1_MS = int(datetime(2026, 2, 28, 16, tzinfo=UTC).timestamp() * 1000)
"""00:00 on 1 March in Asia/Shanghai."""


@dataclass
class SeededTwice:
    engine: Engine
    first: Seeded
    second: Seeded
    rows_after_first: dict[str, int]
    rows_after_second: dict[str, int]


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededTwice]:
    workdir = tmp_path_factory.mktemp("demo")
    engine = make_engine(f"sqlite:///{workdir / 'hub.sqlite'}")
    create_schema(engine)
    settings = HubSettings(database_url="sqlite://", secret_key=SecretStr("demo-seed-test-secret-0123456789abcdef"))
    with start_site(DEMO_SITE, timing=False) as site:
        shape = DailyShape(utc_offset_s=site.spec.utc_offset_h * 3600)

        def seed() -> Seeded:
            seed_registry(engine, "admin-password")
            return seed_demo(engine, settings, workdir, site.devices, shape, NOW)

        first = seed()
        after_first = row_counts(engine)
        second = seed()
    yield SeededTwice(engine, first, second, after_first, row_counts(engine))
    engine.dispose()


def test_every_printed_login_signs_in_with_its_role(seeded: SeededTwice) -> None:
    roles = {login.role for login in seeded.first.logins}
    assert roles == {"finance", "technician", "guard", "owner"}
    with session_factory(seeded.engine)() as session:
        for login in seeded.first.logins:
            user = authenticate(session, login.username, login.password)
            assert user is not None and user.role.value == login.role, login.username
        owner = next(x for x in seeded.first.logins if x.role == "owner")
        user = authenticate(session, owner.username, owner.password)
        assert user is not None and [u.code for u in user.units] == ["1-0101"], "bound to one flat"


def test_last_months_bills_are_issued_from_the_hourly_history(seeded: SeededTwice) -> None:
    assert (seeded.first.period, seeded.first.bills) == ("2026-02", 48)
    assert seeded.first.history_samples > 0
    with session_factory(seeded.engine)() as session:
        runs = session.scalars(select(BillRun)).all()
        assert [(r.period, r.state) for r in runs] == [("2026-02", RunState.ISSUED)]
        bill = session.scalars(select(Bill).where(Bill.number == "demo-site-202602-1-0101")).one()
        assert bill.due_date >= NOW.date(), "not overdue the moment it is issued"
        water = next(line for line in bill.lines if line.label == "水费 第一档 水费")
        series = session.scalars(select(Series.id).where(Series.device == "b1-u01-water")).one()
        at_march_1 = session.scalar(select(Sample.value).where(Sample.series_id == series, Sample.ts == MARCH_1_MS))
        readings = water.detail["readings"]
        start, end = Decimal(readings["start"]["value"]), Decimal(readings["end"]["value"])
        assert end == Decimal(str(at_march_1)), "the meter's hourly reading at the month's end"
        assert water.quantity == end - start > 0
        assert not readings["start"]["estimated"] and not readings["end"]["estimated"]
        assert not readings["flags"], "no missing readings, decreases or replacements"


def test_the_printed_badge_is_the_gate_guards_signed_code(seeded: SeededTwice) -> None:
    with session_factory(seeded.engine)() as session:
        code = verify(session, seeded.first.badge)
        guard = session.scalars(select(User).where(User.role == Role.GUARD)).one()
        assert (code.kind, code.subject_id) == ("b", guard.id)
        gate = session.scalars(select(Checkpoint).where(Checkpoint.code == "cp-north-gate")).one()
        assert gate.method is CheckpointMethod.SCANNER, "the simulated gate scanner's checkpoint"
        running = select(PatrolRound.id).where(PatrolRound.starts_at <= NOW, PatrolRound.ends_at > NOW)
        assert session.scalar(running) is not None, "a round covers the demo's start, so a badge scanned now counts"
        assert session.scalar(select(func.count()).select_from(PatrolRound)) > 1, "and the plan's next rounds"


def test_the_pump_has_an_alarm_rule_a_maintenance_plan_and_skilled_technicians(seeded: SeededTwice) -> None:
    with session_factory(seeded.engine)() as session:
        pump = session.scalars(select(Equipment).where(Equipment.code == "PUMP-01")).one()
        rule = session.scalars(select(AlarmRule).where(AlarmRule.equipment_id == pump.id)).one()
        assert (rule.point, rule.params["below"], rule.params["hysteresis"]) == ("outlet_pressure", 288.0, 6.0)
        assert session.scalars(select(MaintenancePlan).where(MaintenancePlan.equipment_id == pump.id)).one().active
        skills = sorted(skill for t in session.scalars(select(Technician)) for skill in t.skills)
        assert skills == ["electrical", "general", "plumbing"]


def test_seeding_the_same_work_directory_again_changes_nothing(seeded: SeededTwice) -> None:
    assert seeded.rows_after_second == seeded.rows_after_first
    assert seeded.second.logins == seeded.first.logins, "the same generated passwords, kept in the work directory"
    assert seeded.second.badge == seeded.first.badge
    assert (seeded.second.bills, seeded.second.history_samples) == (48, 0)


def test_passwords_are_kept_private_in_the_work_directory(seeded: SeededTwice) -> None:
    workdir = Path(seeded.engine.url.database or "").parent
    kept = {p.name: p for p in workdir.glob("*-password")}
    assert set(kept) == {"demo-finance-password", "demo-plumber-password", "demo-electrician-password",
                         "demo-guard-password", "owner-password"}  # fmt: skip
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in kept.values())
