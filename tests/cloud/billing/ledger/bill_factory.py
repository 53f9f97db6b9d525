"""Issued bills made by hand for ledger, payment and report tests (bill runs are tested on their own)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cloud.api.app import create_app
from cloud.auth.models import Role, User
from cloud.auth.security import create_token
from cloud.billing.models import Bill, BillLine, BillRun, RunState
from cloud.db import make_engine, session_factory
from cloud.registry.models import Building, Site, Unit
from cloud.schema import create_schema
from tests.cloud.api.hub_app import SETTINGS, add_user

ISSUED_AT = datetime(2026, 3, 1, tzinfo=UTC)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
_sites = itertools.count(1)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def books_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated database per backend for the whole run. Each test keeps books on a site of its own
    (``site`` fixture), so tests stay independent without a fresh database each (that costs seconds here)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('books') / 'hub.sqlite'}")
        create_schema(engine)
        yield engine
        engine.dispose()
        return
    name = f"eh_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({exc}); start it (deploy/ensure-services.sh)")
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_site(session: Session, code: str) -> Site:
    site = Site(code=code, name=f"{code} 小区")
    session.add(site)
    session.flush()
    session.add(Building(site_id=site.id, code="B1", name="1号楼"))
    session.flush()
    return site


def add_unit(session: Session, site: Site, code: str, phone: str | None = None) -> Unit:
    building = session.scalars(select(Building).where(Building.site_id == site.id)).first()
    assert building is not None
    unit = Unit(site_id=site.id, building_id=building.id, code=code, floor=1, floor_area_m2=Decimal("88.00"),
                owner_name="业主", owner_phone=phone, household_size=3)  # fmt: skip
    session.add(unit)
    session.flush()
    return unit


def add_bill(session: Session, unit: Unit, period: str, total_fen: int, due: date) -> Bill:
    """An issued bill with one energy line of ``total_fen``."""
    site = session.get(Site, unit.site_id)
    assert site is not None
    run = session.scalar(select(BillRun).where(BillRun.site_id == site.id, BillRun.period == period))
    if run is None:
        run = BillRun(site_id=site.id, period=period, issue=True, state=RunState.ISSUED, units_total=0, units_done=0,
                      summary={}, started_at=ISSUED_AT, finished_at=ISSUED_AT)  # fmt: skip
        session.add(run)
        session.flush()
    bill = Bill(number=f"{site.code}-{period.replace('-', '')}-{unit.code}", site_id=site.id, unit_id=unit.id,
                period=period, run_id=run.id, total_fen=total_fen, issued_at=ISSUED_AT, due_date=due,
                fingerprint="0" * 64)  # fmt: skip
    session.add(bill)
    session.flush()
    session.add(BillLine(bill_id=bill.id, position=1, kind="energy", label="电费 第一档", meter_id=None,
                         quantity=Decimal("100.0000"), unit_price=Decimal(total_fen) / 10000, amount_fen=total_fen,
                         detail={"readings": {"start": "1000.0", "end": "1100.0"}, "tier": 1}))  # fmt: skip
    session.flush()
    return bill


@dataclass
class Books:
    """A site with two units, a finance clerk, two approvers and the ids tests need."""

    engine: Engine
    site_id: int
    site_code: str
    unit_id: int
    other_unit_id: int
    clerk: User
    approver: User
    second_approver: User
    owner: User
    """Bound to ``unit_id``; nobody has bound ``other_unit_id``."""

    def session(self) -> Session:
        return session_factory(self.engine)()

    def bill(self, period: str, total_fen: int, due: date, unit_id: int | None = None) -> int:
        with session_factory(self.engine).begin() as session:
            unit = session.get(Unit, unit_id or self.unit_id)
            assert unit is not None
            return add_bill(session, unit, period, total_fen, due).id


def books(engine: Engine) -> Books:
    """A new site (``books-<n>``) with its own units and staff, in a database other tests share."""
    n = next(_sites)
    with session_factory(engine).begin() as session:
        site = add_site(session, f"books-{n}")
        unit = add_unit(session, site, "1-0101", phone="13800000001")
        other = add_unit(session, site, "1-0102", phone="13800000002")
        clerk = add_user(session, f"clerk-{n}", Role.FINANCE, sites=[site.id])
        approver = add_user(session, f"approver-{n}", Role.FINANCE, sites=[site.id])
        second = add_user(session, f"chief-{n}", Role.ADMIN, sites=[site.id])
        owner = add_user(session, f"owner-{n}", Role.OWNER, units=[unit.id], phone=unit.owner_phone)
        session.expunge_all()
        return Books(engine, site.id, site.code, unit.id, other.id, clerk, approver, second, owner)


@dataclass
class Api:
    """The hub's HTTP app on the shared database, signed in as any user of any ``Books``."""

    app: FastAPI
    client: TestClient

    def headers(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_token(SETTINGS, user.id, user.password_changed_at)}"}

    def get(self, user: User, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers(user), **kwargs)

    def post(self, user: User, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, headers=self.headers(user), **kwargs)


@pytest.fixture(scope="session")
def api(books_engine: Engine) -> Iterator[Api]:
    app = create_app(SETTINGS, engine=books_engine)
    with TestClient(app) as client:
        yield Api(app, client)
