"""A small plant for maintenance tests: one site with a pump, its standard, a technician and an engineer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cloud.audit.services import Actor
from cloud.auth.models import Role, User
from cloud.db import session_factory
from cloud.maintenance import services
from cloud.maintenance.models import EquipmentType, ItemKind, MaintenancePlan, PeriodUnit
from cloud.maintenance.schemas import EquipmentTypeIn, ItemIn, PlanIn
from cloud.registry.models import Equipment, Site
from tests.cloud.api.hub_app import add_user

CREATED = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
"""10:00 on 1 March in Shanghai."""
SEED = Actor("test")


@dataclass
class Plant:
    engine: Engine
    site_id: int
    pump_id: int
    type_id: int
    technician_id: int
    engineer_id: int

    def session(self) -> Session:
        return session_factory(self.engine)()


def pump_standard(site_id: int) -> EquipmentTypeIn:
    return EquipmentTypeIn(
        site_id=site_id, code="pump", name="水泵", period_unit=PeriodUnit.MONTH, period_count=1,
        items=[
            ItemIn(name="出口压力", kind=ItemKind.READING, unit="kPa", min_value=Decimal("250"),
                   max_value=Decimal("450")),
            ItemIn(name="机械密封无渗漏", kind=ItemKind.CHECK),
        ],
    )  # fmt: skip


def make_plan(plant: Plant, session: Session, *, starts_on: date, unit: PeriodUnit = PeriodUnit.WEEK,
              count: int = 1, lead_days: int = 3, remind_days: int = 1) -> MaintenancePlan:  # fmt: skip
    data = PlanIn(
        equipment_id=plant.pump_id, name="水泵月度保养", responsible_id=plant.technician_id, starts_on=starts_on,
        period_unit=unit, period_count=count, lead_days=lead_days, remind_days=remind_days,
    )  # fmt: skip
    return services.create_plan(session, SEED, session.get_one(Equipment, plant.pump_id), data, CREATED)


def seed_plant(engine: Engine) -> Plant:
    with session_factory(engine).begin() as session:
        site = Site(code="plant-site", name="测试小区")
        session.add(site)
        session.flush()
        pump = Equipment(site_id=site.id, code="PUMP-01", name="1号泵房", type="pump")
        session.add(pump)
        technician: User = add_user(session, "tech", Role.TECHNICIAN, sites=[site.id])
        engineer: User = add_user(session, "eng", Role.ENGINEER, sites=[site.id])
        kind: EquipmentType = services.create_type(session, SEED, pump_standard(site.id))
        return Plant(engine, site.id, pump.id, kind.id, technician.id, engineer.id)


@pytest.fixture
def plant(engine: Engine) -> Plant:
    return seed_plant(engine)
