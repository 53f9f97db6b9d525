"""A small patrol world on both backends: two sites, guards, an admin, three checkpoints on an ordered route,
and a daily plan of one 30-minute round at 09:00 Shanghai time.

Round of 2026-03-02 (a Monday), UTC 01:00-01:30; expected arrivals A 01:02, B 01:07, C 01:12 (walks 120 s,
300 s, 300 s); tolerance 3 min, grace 5 min:
A on time 01:00-01:05, late until 01:10; B on time 01:04-01:10, late until 01:15; C 01:09-01:15, late to 01:20.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.auth.models import Role, User, user_sites
from cloud.auth.security import hash_password
from cloud.db import Base, session_factory
from cloud.notify.models import Notification
from cloud.patrol.checkpoints import CheckpointSpec, create_checkpoint
from cloud.patrol.keys import checkpoint_code, rotate_key
from cloud.patrol.models import CheckpointMethod, PatrolPlan, PatrolRound, Recurrence, RoundCheckpoint
from cloud.patrol.plans import generate
from cloud.patrol.routes_tour import Stop, create_route
from cloud.registry.models import Building, Site

PASSWORD = "correct horse 1"
USERS_SINCE = datetime(2026, 1, 1, tzinfo=UTC)
ROUND_START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
DAY = date(2026, 3, 2)
PATROL_TABLES = sorted(t for t in Base.metadata.tables if t.startswith("patrol_")) + ["notifications"]


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def add_user(session: Session, username: str, role: Role, site_id: int) -> User:
    """A staff user of one site (tests/cloud/api/hub_app.py has the same for the seeded hub; this folder does not
    import the app, so it runs while other parts of the API are mid-change)."""
    user = User(username=username, full_name=username, role=role, password_hash=password_hash(),
                password_changed_at=USERS_SINCE, is_active=True, all_sites=False, created_at=USERS_SINCE)  # fmt: skip
    session.add(user)
    session.flush()
    session.execute(insert(user_sites).values(user_id=user.id, site_id=site_id))
    return user


def at(minutes: float) -> datetime:
    """Minutes after the round's start."""
    return ROUND_START + timedelta(minutes=minutes)


@dataclass
class World:
    sessions: sessionmaker[Session]
    site_x: int
    site_y: int
    guard: User
    other_guard: User
    guard_y: User
    admin: User
    checkpoints: dict[str, int] = field(default_factory=dict)
    """A, B, C at site X; Y1 at site Y."""
    route_id: int = 0
    plan_id: int = 0

    def code(self, name: str) -> str:
        with self.sessions.begin() as session:
            site = self.site_y if name.startswith("Y") else self.site_x
            return checkpoint_code(session, site, self.checkpoints[name])

    def counts(self) -> dict[str, int]:
        """Rows per patrol table (and notifications): to show a rejected scan changed nothing."""
        with self.sessions() as session:
            return {t: session.scalar(select(func.count()).select_from(Base.metadata.tables[t])) or 0
                    for t in PATROL_TABLES}  # fmt: skip

    def slots(self, round_id: int | None = None) -> dict[str, RoundCheckpoint]:
        with self.sessions() as session:
            rid = round_id or self.round_id()
            rows = session.scalars(select(RoundCheckpoint).where(RoundCheckpoint.round_id == rid)).all()
            names = {v: k for k, v in self.checkpoints.items()}
            return {names[r.checkpoint_id]: r for r in rows}

    def round_id(self, starts_at: datetime = ROUND_START) -> int:
        with self.sessions() as session:
            return session.scalars(select(PatrolRound.id).where(PatrolRound.starts_at == starts_at)).one()


def make_plan(session: Session, site_id: int, route_id: int, assignees: list[int], **overrides: object) -> PatrolPlan:
    values: dict[str, object] = dict(
        site_id=site_id, route_id=route_id, name="早班巡更", recurrence=Recurrence.DAILY, every_n_days=1,
        start_date=date(2026, 3, 1), end_date=None, shift_start=time(9, 0), shift_end=time(10, 0),
        round_every_min=60, round_minutes=30, tolerance_min=3, grace_min=5, assignees=assignees,
        ticket_on_miss=False, active=True,
    )  # fmt: skip
    values.update(overrides)
    plan = PatrolPlan(**values)
    session.add(plan)
    session.flush()
    return plan


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    sessions = session_factory(engine)
    with sessions.begin() as session:
        x, y = Site(code="px", name="翠湖花园"), Site(code="py", name="别的小区")
        session.add_all([x, y])
        session.flush()
        building = Building(site_id=x.id, code="B1", name="1号楼")
        session.add(building)
        session.flush()
        w = World(
            sessions, x.id, y.id,
            guard=add_user(session, "guard1", Role.GUARD, x.id),
            other_guard=add_user(session, "guard2", Role.GUARD, x.id),
            guard_y=add_user(session, "guardy", Role.GUARD, y.id),
            admin=add_user(session, "admin_px", Role.ADMIN, x.id),
        )  # fmt: skip
        rotate_key(session, x.id, ROUND_START - timedelta(days=30))
        rotate_key(session, y.id, ROUND_START - timedelta(days=30))
        specs = {
            "A": CheckpointSpec("A", "北门岗亭", CheckpointMethod.QR, building.id, 1, "大门口", 0, 0),
            "B": CheckpointSpec("B", "地下车库", CheckpointMethod.SCANNER, building.id, -1, "B1 泵房旁", 100, 0),
            "C": CheckpointSpec("C", "天台", CheckpointMethod.QR, building.id, 18, "楼梯间出口", 100, 100),
        }
        for name, spec in specs.items():
            w.checkpoints[name] = create_checkpoint(session, x.id, spec).id
        w.checkpoints["Y1"] = create_checkpoint(session, y.id, CheckpointSpec("Y1", "Y门", CheckpointMethod.QR)).id
        route = create_route(session, x.id, "1号楼夜巡", True,
                             [Stop(w.checkpoints["A"], 120), Stop(w.checkpoints["B"], 300), Stop(w.checkpoints["C"], 300)])  # fmt: skip
        w.route_id = route.id
        plan = make_plan(session, x.id, route.id, [w.guard.id], ticket_on_miss=True)
        w.plan_id = plan.id
        generate(session, plan, DAY, DAY, ROUND_START - timedelta(days=1))
    yield w


def notifications(world: World) -> list[Notification]:
    """Missed-checkpoint alerts (tickets queue notifications of their own)."""
    with world.sessions() as session:
        return list(
            session.scalars(select(Notification).where(Notification.kind == "patrol.missed").order_by(Notification.id))
        )
