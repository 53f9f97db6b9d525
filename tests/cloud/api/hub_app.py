"""A seeded hub for API tests: the demo site plus a second site, staff and owners of both, readings, edge
state and dead letters, and an app with a captured SMS sender (mock: no SMS gateway here).

Site X is the demo site (demo-site); owner A holds unit 1-0101 (building B1), owner B unit 2-0101
(building B2) of the same site. Site Y (other-site) is small and has its own staff-visible things.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from cloud.api.app import create_app
from cloud.audit.services import Actor
from cloud.auth.models import Role, User, owner_units, user_sites
from cloud.auth.security import create_token, hash_password
from cloud.db import session_factory
from cloud.ingest.models import DeadLetter, EdgeStateRow
from cloud.registry.demo import demo_registry
from cloud.registry.importer import import_registry, parse_data
from cloud.registry.models import Building, Edge, Equipment, Meter, Site, Unit
from cloud.settings import HubSettings
from cloud.timeseries.bulk import SeriesIds, write_samples
from cloud.timeseries.models import Series
from cloud.timeseries.rollup import mark_dirty, series_hours

PASSWORD = "correct horse 1"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
HOUR_MS = 3_600_000
SETTINGS = HubSettings(secret_key=SecretStr("test-secret-not-for-production-0123456789"), token_ttl_s=3600)

OTHER_SITE: dict[str, Any] = {
    "code": "other-site",
    "name": "别的小区",
    "buildings": [{"code": "YB1", "name": "Y1号楼"}],
    "units": [{"code": "Y-0101", "building": "YB1", "floor": 1, "floor_area_m2": "77.70", "owner_name": "赵六",
               "owner_phone": "13912345678", "household_size": 2}],  # fmt: skip
    "meters": [{"code": "EM-Y-0101", "kind": "electricity", "role": "sub", "unit": "Y-0101"}],
    "equipment": [{"code": "Y-PUMP", "name": "Y泵房", "type": "pump"}],
    "edges": [{"code": "y-edge", "devices": [
        {"name": "y-0101-elec", "profile": "chint_ddsu666", "meter": "EM-Y-0101"},
        {"name": "y-pump", "profile": "pump_station", "equipment": "Y-PUMP"},
    ]}],
}  # fmt: skip


@cache
def password_hash() -> str:
    """One argon2 hash for every seeded user: hashing is deliberately slow."""
    return hash_password(PASSWORD)


class CapturedSms:
    """mock: no SMS gateway here. Keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))

    def last_code(self, phone: str) -> str:
        text = next(t for p, t in reversed(self.sent) if p == phone)
        found = re.search(r"(?<!\d)\d{6}(?!\d)", text)
        assert found is not None, text
        return found.group()


@dataclass
class Hub:
    engine: Engine
    app: FastAPI
    client: TestClient
    sms: CapturedSms
    users: dict[str, User] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    """Named objects: site_x, site_y, unit_a, unit_b, unit_y, meter_b, series_b, ..."""

    def session(self) -> Session:
        return session_factory(self.engine)()

    def token(self, name: str) -> str:
        user = self.users[name]
        return create_token(SETTINGS, user.id, user.password_changed_at)

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"}

    def get(self, name: str, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers(name), **kwargs)


def add_user(session: Session, username: str, role: Role, *, sites: Sequence[int] = (), units: Sequence[int] = (),
             phone: str | None = None, all_sites: bool = False) -> User:  # fmt: skip
    user = User(username=username, full_name=username, phone=phone, role=role, password_hash=password_hash(),
                password_changed_at=T0, is_active=True, all_sites=all_sites, created_at=T0)  # fmt: skip
    session.add(user)
    session.flush()
    if sites:
        session.execute(insert(user_sites), [{"user_id": user.id, "site_id": s} for s in sites])
    if units:
        session.execute(insert(owner_units), [{"user_id": user.id, "unit_id": u} for u in units])
    return user


def _id(session: Session, model: type[Any], **where: Any) -> int:
    stmt = select(model.id)
    for k, v in where.items():
        stmt = stmt.where(getattr(model, k) == v)
    return int(session.scalars(stmt).one())


def seed(engine: Engine) -> tuple[dict[str, User], dict[str, int]]:
    registry = demo_registry()
    registry["sites"].append(OTHER_SITE)
    with session_factory(engine).begin() as session:
        import_registry(session, parse_data(registry), Actor("seed"))
        ids = {"site_x": _id(session, Site, code="demo-site"), "site_y": _id(session, Site, code="other-site")}
        x, y = ids["site_x"], ids["site_y"]
        ids |= {
            "unit_a": _id(session, Unit, site_id=x, code="1-0101"),
            "unit_b": _id(session, Unit, site_id=x, code="2-0101"),
            "unit_y": _id(session, Unit, site_id=y, code="Y-0101"),
            "building_b": _id(session, Building, site_id=x, code="B2"),
            "building_y": _id(session, Building, site_id=y, code="YB1"),
            "meter_a": _id(session, Meter, site_id=x, code="EM-B1-U01"),
            "meter_b": _id(session, Meter, site_id=x, code="EM-B2-U01"),
            "water_b": _id(session, Meter, site_id=x, code="WM-B2-U01"),
            "meter_y": _id(session, Meter, site_id=y, code="EM-Y-0101"),
            "equipment_x": _id(session, Equipment, site_id=x, code="PUMP-01"),
            "equipment_y": _id(session, Equipment, site_id=y, code="Y-PUMP"),
            "edge_x": _id(session, Edge, site_id=x, code="demo-edge"),
            "edge_y": _id(session, Edge, site_id=y, code="y-edge"),
        }
        unit_phone = {id: phone or "" for id, phone in session.execute(select(Unit.id, Unit.owner_phone))}
        users = {
            "admin": add_user(session, "admin", Role.ADMIN, all_sites=True),
            "admin_x": add_user(session, "admin_x", Role.ADMIN, sites=[x]),
            "engineer_x": add_user(session, "engineer_x", Role.ENGINEER, sites=[x]),
            "finance_x": add_user(session, "finance_x", Role.FINANCE, sites=[x]),
            "guard_x": add_user(session, "guard_x", Role.GUARD, sites=[x]),
            "engineer_y": add_user(session, "engineer_y", Role.ENGINEER, sites=[y]),
            "owner_a": add_user(
                session, unit_phone[ids["unit_a"]], Role.OWNER, units=[ids["unit_a"]], phone=unit_phone[ids["unit_a"]]
            ),  # fmt: skip
            "owner_b": add_user(
                session, unit_phone[ids["unit_b"]], Role.OWNER, units=[ids["unit_b"]], phone=unit_phone[ids["unit_b"]]
            ),  # fmt: skip
        }
        session.add_all([
            EdgeStateRow(site="demo-site", edge="demo-edge", online=True, last_seen=T0, status_at=T0,
                         last_status={"backlog": 12, "agent_version": "1.0", "links": {"b1-master": {"ok": True}}},
                         stored=[[1, 100], [120, 150]], dropped=[], acked_through=100, dropped_total=0),
            EdgeStateRow(site="other-site", edge="y-edge", online=False, last_seen=T0, status_at=T0,
                         last_status={"backlog": 3}, stored=[[1, 10]], dropped=[], acked_through=10, dropped_total=0),
            DeadLetter(received_at=T0, topic="eh/v1/demo-site/demo-edge/up/data", reason="bad json", payload=b"{",
                       size=1, site="demo-site", edge="demo-edge"),
            DeadLetter(received_at=T0, topic="eh/v1/other-site/y-edge/up/data", reason="other-site secret", payload=b"x",
                       size=1, site="other-site", edge="y-edge"),
        ])  # fmt: skip
    with engine.begin() as conn:
        keys = {
            ("demo-site", "demo-edge", "b1-u01-elec", "energy_import"): "energy_import_kwh",
            ("demo-site", "demo-edge", "b2-u01-elec", "energy_import"): "energy_import_kwh",
            ("demo-site", "demo-edge", "b2-u01-water", "forward_total"): "water_volume_m3",
            ("demo-site", "demo-edge", "pump-station", "outlet_pressure"): "pressure_kpa",
            ("other-site", "y-edge", "y-0101-elec", "energy_import"): "energy_import_kwh",
            ("other-site", "y-edge", "y-pump", "outlet_pressure"): "pressure_kpa",
        }
        series = SeriesIds().resolve(conn, keys)
        rows = [(sid, T0_MS + h * HOUR_MS, 1 + n * 100 + h, 100.0 + 1.5 * h + n, 0)
                for n, sid in enumerate(series.values()) for h in range(49)]  # fmt: skip
        write_samples(conn, rows)
        mark_dirty(conn, series_hours(rows))  # as ingest does: rollups are not refreshed here
    names = {"series_a": "b1-u01-elec", "series_b": "b2-u01-elec", "series_y": "y-0101-elec"}
    with session_factory(engine)() as session:
        for name, device in names.items():
            ids[name] = _id(session, Series, device=device)
    return users, ids


@pytest.fixture
def hub(engine: Engine) -> Iterator[Hub]:
    users, ids = seed(engine)
    sms = CapturedSms()
    app = create_app(SETTINGS, engine=engine, sms_sender=sms)
    with TestClient(app) as client:
        yield Hub(engine, app, client, sms, users, ids)
