"""A guard badges at a fixed checkpoint scanner while the broker is down: the scan reaches the round after
recovery, with the time it was made, and counts on time although it arrived after its on-time window.

Real parts: the edge agent (a child process) reading a simulated serial scanner (a pty), a throwaway
Mosquitto stopped and started again, the hub's ingest worker and edge-scan intake on a SQLite database.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select

from cloud.auth.models import Role, User, user_sites
from cloud.db import make_engine, session_factory
from cloud.ingest.models import EdgeStateRow, EventRow
from cloud.ingest.worker import IngestWorker
from cloud.patrol.checkpoints import CheckpointSpec, create_checkpoint
from cloud.patrol.edge_scans import EdgeScanWorker
from cloud.patrol.keys import badge_code
from cloud.patrol.models import (
    CheckpointMethod,
    CheckpointResult,
    PatrolPlan,
    PatrolRound,
    PatrolScan,
    Recurrence,
    RoundCheckpoint,
    Trust,
)
from cloud.patrol.routes_tour import Stop, create_route
from cloud.registry.models import Site
from cloud.schema import create_schema
from cloud.settings import HubSettings
from firmware_sims.scanner import SimulatedScanner
from tests.e2e.test_edge_delivery import EdgeProcess
from tests.support.ackhub import wait_until
from tests.support.brokers import Mosquitto

OUTAGE_S = 6.0


@pytest.fixture
def hub_db(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def set_up_round(engine: Engine, site_code: str, due_until: datetime) -> tuple[str, int]:
    """A guard, the scanner's checkpoint, and a running round whose on-time window for it ends at
    ``due_until`` (during the outage). Returns the guard's badge code and the round checkpoint id."""
    now = datetime.now(UTC)
    with session_factory(engine).begin() as session:
        site = Site(code=site_code, name="翠湖花园")
        session.add(site)
        session.flush()
        guard = User(username="guard-e2e", full_name="张保安", role=Role.GUARD, password_hash="x",
                     password_changed_at=now, is_active=True, all_sites=False, created_at=now)  # fmt: skip
        session.add(guard)
        session.flush()
        session.execute(user_sites.insert().values(user_id=guard.id, site_id=site.id))
        checkpoint = create_checkpoint(
            session, site.id, CheckpointSpec("cp-garage", "地下车库", CheckpointMethod.SCANNER)
        )
        route = create_route(session, site.id, "地库巡更", True, [Stop(checkpoint.id, 0)])
        plan = PatrolPlan(site_id=site.id, route_id=route.id, name="夜班", recurrence=Recurrence.DAILY,
                          every_n_days=1, start_date=now.date(), shift_start=now.time(), shift_end=now.time(),
                          round_every_min=60, round_minutes=30, tolerance_min=0, grace_min=10,
                          assignees=[guard.id], ticket_on_miss=False, active=True)  # fmt: skip
        session.add(plan)
        session.flush()
        round_ = PatrolRound(site_id=site.id, plan_id=plan.id, route_id=route.id, starts_at=now - timedelta(minutes=1),
                             ends_at=now + timedelta(minutes=29), assignees=[guard.id], guard_id=guard.id,
                             ordered=True, ticket_on_miss=False)  # fmt: skip
        session.add(round_)
        session.flush()
        slot = RoundCheckpoint(site_id=site.id, round_id=round_.id, checkpoint_id=checkpoint.id, position=1,
                               opens_at=round_.starts_at, due_from=round_.starts_at, due_until=due_until,
                               closes_at=due_until + timedelta(minutes=10))  # fmt: skip
        session.add(slot)
        session.flush()
        return badge_code(session, site.id, guard.id), slot.id


def edge_config(tmp_path: Path, site: str, broker: Mosquitto, scanner: SimulatedScanner) -> Path:
    data = {
        "site": site, "edge": "edge-1",
        "broker": {"host": broker.host, "port": broker.port, "keepalive_s": 5, "reconnect_min_s": 0.2,
                   "reconnect_max_s": 1},
        "outbox": {"path": str(tmp_path / "outbox.sqlite")},
        "uplink": {"ack_timeout_s": 2, "status_interval_s": 2},
        "scanners": [{"name": "garage-scanner", "port": scanner.path, "checkpoint": "cp-garage"}],
    }  # fmt: skip
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def edge_online(engine: Engine, site: str) -> bool:
    with session_factory(engine)() as session:
        return bool(session.scalar(select(EdgeStateRow.online).where(EdgeStateRow.site == site)))


def scan_events(engine: Engine) -> list[EventRow]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(EventRow).where(EventRow.type == "patrol_scan")))


@pytest.mark.slow
def test_a_badge_scan_during_a_broker_outage_reaches_the_round_on_time(
    hub_db: Engine, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    site = f"e2e-{uuid.uuid4().hex[:6]}"
    settings = HubSettings(database_url="sqlite://", broker_host=mosquitto.host, broker_port=mosquitto.port,
                           share_group=f"test-{uuid.uuid4().hex[:8]}")  # fmt: skip
    ingest = IngestWorker(settings, hub_db, "patrol-e2e")
    stop = threading.Event()
    ingest_thread = threading.Thread(target=ingest.run, args=(stop,), daemon=True)
    intake = EdgeScanWorker(hub_db, interval_s=0.2)
    with SimulatedScanner("garage-scanner") as scanner:
        edge = EdgeProcess(edge_config(tmp_path, site, mosquitto, scanner), tmp_path / "edge.log")
        edge.start()
        ingest_thread.start()
        intake.start()
        try:
            wait_until(lambda: edge_online(hub_db, site), 20, "the edge's status at the hub (both connected)")
            on_time_until = datetime.now(UTC) + timedelta(seconds=1 + OUTAGE_S / 2)
            badge, slot_id = set_up_round(hub_db, site, due_until=on_time_until)
            mosquitto.stop()
            time.sleep(1)  # the edge notices the broker is gone
            scanner.scan(badge)
            scanned_at = datetime.now(UTC)
            time.sleep(OUTAGE_S)  # the on-time window closes during the outage
            assert scan_events(hub_db) == [], "nothing can reach the hub while the broker is down"
            mosquitto.start()
            delivered = datetime.now(UTC)
            wait_until(lambda: bool(scan_events(hub_db)), 30, "the buffered scan delivered after recovery")
            slot_done = lambda: session_factory(hub_db)().get_one(RoundCheckpoint, slot_id).scan_id is not None  # noqa: E731
            wait_until(slot_done, 10, "the scan counted in the round")
        finally:
            intake.stop()
            stop.set()
            ingest_thread.join(10)
            if edge.alive():
                edge.signal(15)
    with session_factory(hub_db)() as session:
        slot = session.get_one(RoundCheckpoint, slot_id)
        scan = session.scalars(select(PatrolScan)).one()
    assert abs((scan.scanned_at - scanned_at).total_seconds()) < 1.0, "the scan keeps the time it was made"
    assert scan.received_at >= delivered > slot.due_until, "it arrived after its on-time window had closed"
    assert slot.result is CheckpointResult.ON_TIME and scan.trust is Trust.STRONG and scan.counted
