"""The guard's patrol page in a real browser against a real hub HTTP server: with no signal the guard scans
three checkpoints (typed codes, as from a Bluetooth scanner or the camera hook), which queue on the phone;
when the signal returns they sync by themselves and the round completes with the original scan times,
marked as offline (low-trust) scans; the supervisor's live floor view, open all along, shows them arrive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, select

from cloud.api.app import create_app
from cloud.auth.models import Role, User, user_sites
from cloud.auth.security import hash_password
from cloud.console.pages import mount_console
from cloud.db import make_engine, session_factory
from cloud.patrol.checkpoints import CheckpointSpec, create_checkpoint
from cloud.patrol.keys import checkpoint_code
from cloud.patrol.models import CheckpointMethod, PatrolPlan, PatrolScan, Recurrence, RoundCheckpoint, ScanSource, Trust
from cloud.patrol.plans import TZ, generate
from cloud.patrol.routes_tour import Stop, create_route
from cloud.registry.models import Building, Site
from cloud.schema import create_schema
from tests.cloud.api.hub_app import SETTINGS
from tests.support.browser import TIMEOUT_MS, chromium, serve
from tests.support.browser import sign_in as console_sign_in

PASSWORD = "guard password 1"


@dataclass
class RunningHub:
    url: str
    engine: Engine
    codes: dict[str, str]


def seed_patrol(engine: Engine) -> dict[str, str]:
    """A guard, three QR checkpoints on an unordered route, and a round that started a minute ago."""
    now = datetime.now(UTC)
    with session_factory(engine).begin() as session:
        site = Site(code="patrol-site", name="翠湖花园")
        session.add(site)
        session.flush()
        building = Building(site_id=site.id, code="B1", name="1号楼")
        guard = User(username="guard", full_name="张保安", role=Role.GUARD, password_hash=hash_password(PASSWORD),
                     password_changed_at=now - timedelta(days=1), is_active=True, all_sites=False, created_at=now)  # fmt: skip
        session.add_all([building, guard])
        session.flush()
        supervisor = User(username="supervisor", full_name="李主管", role=Role.ADMIN,
                          password_hash=hash_password(PASSWORD), password_changed_at=now - timedelta(days=1),
                          is_active=True, all_sites=False, created_at=now)  # fmt: skip
        session.add(supervisor)
        session.flush()
        session.execute(user_sites.insert(), [{"user_id": u.id, "site_id": site.id} for u in (guard, supervisor)])
        checkpoints = [
            create_checkpoint(session, site.id, CheckpointSpec(code, name, CheckpointMethod.QR, building.id, floor, where))
            for code, name, floor, where in [("GATE", "北门岗亭", 1, "大门口"), ("GARAGE", "地下车库", -1, "泵房旁"),
                                             ("ROOF", "天台", 18, "楼梯间出口")]
        ]  # fmt: skip
        route = create_route(session, site.id, "1号楼巡更", False, [Stop(c.id, 60) for c in checkpoints])
        start = (now - timedelta(minutes=1)).astimezone(TZ).replace(second=0, microsecond=0)
        plan = PatrolPlan(site_id=site.id, route_id=route.id, name="夜班", recurrence=Recurrence.DAILY, every_n_days=1,
                          start_date=start.date(), shift_start=start.time(),
                          shift_end=(start + timedelta(hours=1)).time(), round_every_min=60, round_minutes=30,
                          tolerance_min=5, grace_min=10, assignees=[guard.id], ticket_on_miss=False, active=True)  # fmt: skip
        session.add(plan)
        session.flush()
        assert generate(session, plan, start.date(), start.date(), start - timedelta(minutes=1)) == 1
        return {c.code: checkpoint_code(session, site.id, c.id) for c in checkpoints}


@pytest.fixture
def running_hub(tmp_path: Path) -> Iterator[RunningHub]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    create_schema(engine)
    codes = seed_patrol(engine)
    app = create_app(SETTINGS, engine=engine)
    mount_console(app)
    try:
        with serve(app) as url:
            yield RunningHub(url, engine, codes)
    finally:
        engine.dispose()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def sign_in(browser: Browser, hub: RunningHub, username: str) -> Page:
    return console_sign_in(browser, hub.url, username, PASSWORD)


def test_scans_queued_offline_sync_when_back_online_with_their_original_times(
    running_hub: RunningHub, browser: Browser
) -> None:
    supervisor = sign_in(browser, running_hub, "supervisor")
    supervisor.get_by_test_id("nav-patrol-live").click()
    expect(supervisor.get_by_test_id("cp-ROOF")).to_have_attribute("data-result", "pending")
    page = sign_in(browser, running_hub, "guard")
    context = page.context
    page.get_by_test_id("nav-patrol").click()
    expect(page.get_by_test_id("cp-GATE")).to_have_attribute("data-result", "pending")
    assert page.locator("link[rel=manifest]").get_attribute("href") == "/console/static/patrol.webmanifest"

    context.set_offline(True)
    for code in ("GATE", "GARAGE", "ROOF"):
        page.get_by_test_id("patrol-code").fill(running_hub.codes[code])
        page.get_by_test_id("patrol-submit").click()
        page.wait_for_timeout(300)  # three scans a moment apart, each with its own time
    expect(page.get_by_test_id("patrol-queue")).to_have_text("3")
    expect(page.get_by_test_id("patrol-status")).to_contain_text("无信号")
    queued = json.loads(
        page.evaluate("() => JSON.stringify(JSON.parse(localStorage.getItem(Object.keys(localStorage)[0])))")
    )
    with session_factory(running_hub.engine)() as session:
        assert session.scalars(select(PatrolScan)).all() == [], "nothing reached the hub while offline"
    page.wait_for_timeout(1500)  # the scans are older than their delivery

    context.set_offline(False)
    expect(page.get_by_test_id("patrol-queue")).to_have_text("0")
    for code in ("GATE", "GARAGE", "ROOF"):
        row = page.get_by_test_id(f"cp-{code}")
        expect(row).to_have_attribute("data-result", "on_time")
        expect(row).to_have_attribute("data-trust", "low")
    expect(page.get_by_test_id("cp-GATE")).to_contain_text("低（离线扫码）")

    live = supervisor.get_by_test_id("cp-ROOF")  # the supervisor's open page updates by itself
    expect(live).to_have_attribute("data-result", "on_time", timeout=TIMEOUT_MS)
    expect(live).to_contain_text("低（离线扫码）")
    expect(supervisor.get_by_test_id("patrol-live")).to_contain_text("1号楼 · 18层")

    with session_factory(running_hub.engine)() as session:
        scans = session.scalars(select(PatrolScan).order_by(PatrolScan.scanned_at)).all()
        slots = session.scalars(select(RoundCheckpoint)).all()
    assert [(s.source, s.trust, s.counted) for s in scans] == [(ScanSource.OFFLINE, Trust.LOW, True)] * 3
    sent = sorted(datetime.fromisoformat(q["scanned_at"]) for q in queued)
    assert [s.scanned_at for s in scans] == sent, "each scan keeps the time it was made on the phone"
    assert all(s.received_at - s.scanned_at > timedelta(seconds=1) for s in scans)
    assert all(s.scan_id is not None for s in slots), "the round is complete"
    context.close()
    supervisor.context.close()
