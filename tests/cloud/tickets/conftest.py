"""A seeded site with technicians for the ticket tests (on SQLite and PostgreSQL, see tests/cloud/conftest.py).

Site X (demo-site) has buildings B1 (owner A's unit 1-0101) and B2 (owner B's unit 2-0101). Its technicians:
plumber_b1 and plumber_b2 (plumbing, zoned to their building), electrician (electrical, whole site), all on
shift around ``NOW``; lead_x is the team lead (escalation level 1), admin_x the manager (level 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cloud.auth.models import Role, User
from cloud.db import session_factory
from cloud.registry.models import Unit
from cloud.tickets.attachments import AttachmentStore
from cloud.tickets.models import Category, TicketSiteSettings
from cloud.tickets.technicians import add_shift, upsert_technician
from tests.cloud.api.hub_app import T0, Hub, add_user, hub, seed

__all__ = ["hub"]

NOW = T0 + timedelta(hours=1)
"""2026-03-01 09:00 in Shanghai: a Sunday morning."""


@dataclass
class World:
    engine: Engine
    users: dict[str, User]
    ids: dict[str, int]
    techs: dict[str, int] = field(default_factory=dict)
    """Technician profile ids by username."""

    def session(self) -> Session:
        return session_factory(self.engine)()


def add_technicians(engine: Engine, users: dict[str, User], ids: dict[str, int]) -> dict[str, int]:
    x = ids["site_x"]
    with session_factory(engine).begin() as session:
        b1 = session.scalar(select(Unit.building_id).where(Unit.id == ids["unit_a"]))
        assert b1 is not None
        ids["building_a"] = b1
        techs = {}
        for name, skills, zones in (
            ("plumber_b1", [Category.PLUMBING], [b1]),
            ("plumber_b2", [Category.PLUMBING], [ids["building_b"]]),
            ("electrician", [Category.ELECTRICAL, Category.GENERAL], []),
        ):
            user = add_user(session, name, Role.TECHNICIAN, sites=[x])
            users[name] = user
            tech = upsert_technician(session, user, x, skills=skills, zone_building_ids=zones)
            add_shift(session, tech, NOW - timedelta(hours=2), NOW + timedelta(hours=10))
            techs[name] = tech.id
        users["lead_x"] = add_user(session, "lead_x", Role.ENGINEER, sites=[x])
        session.add(
            TicketSiteSettings(
                site_id=x,
                team_lead_id=users["lead_x"].id,
                manager_id=users["admin_x"].id,
                grab_mode=False,
                accept_timeout_s=600,
                business_days=[],
            )
        )
    return techs


@pytest.fixture
def world(engine: Engine) -> World:
    users, ids = seed(engine)
    techs = add_technicians(engine, users, ids)
    return World(engine, users, ids, techs)


@dataclass
class TicketHub:
    """The seeded API hub with the same technicians, a clock the test moves, and photos in a temporary folder."""

    hub: Hub
    now: datetime = NOW

    def post(self, name: str, url: str, **kwargs: object) -> Any:
        return self.hub.client.post(url, headers=self.hub.headers(name), **kwargs)  # type: ignore[arg-type]

    def get(self, name: str, url: str, **kwargs: object) -> Any:
        return self.hub.client.get(url, headers=self.hub.headers(name), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def ticket_hub(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> TicketHub:
    add_technicians(hub.engine, hub.users, hub.ids)
    th = TicketHub(hub)
    hub.app.state.ticket_clock = lambda: th.now
    hub.app.state.ticket_files = AttachmentStore(tmp_path_factory.mktemp("ticket-files"), max_bytes=200_000)
    return th


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)
