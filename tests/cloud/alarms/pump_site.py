"""A whole hub process (cloud.service.HubService: ingest over MQTT, alarm worker, dispatcher, HTTP) on the small
simulated site of tests/e2e/site.yaml, with two technicians watching their live notification streams; and the
edge agent polling the simulated pump room, whose outlet pressure a test drops below the edge rule's limit.

Shared by the end-to-end test and the alarm_notify bench. The pressure drop: the simulated pump's pressure is
300 kPa plus smooth noise of +-15 kPa as a function of the simulators' clock; the site runs on a clock that
is ours to move, parked where the pressure stays high, then moved forward to a moment where it is low. The
edge polls the next value and its rule fires: that is the threshold crossing, at a known instant.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr
from sqlalchemy import func, select

from cloud.audit.services import Actor
from cloud.auth.models import Role, User
from cloud.auth.security import create_token
from cloud.db import session_factory
from cloud.registry.demo import demo_registry
from cloud.registry.importer import import_registry, parse_data
from cloud.registry.models import Site
from cloud.service import HubService
from cloud.settings import HubSettings
from cloud.tickets.models import Technician
from cloud.timeseries.models import Sample, Series
from firmware_sims.site import RunningSite, start_site
from tests.cloud.api.hub_app import add_user
from tests.cloud.notify.helpers import SseReader
from tests.support.ackhub import wait_until
from tests.support.brokers import free_port

REPO = Path(__file__).resolve().parents[3]
SITE_FILE = REPO / "tests" / "e2e" / "site.yaml"
SITE, EDGE = "e2e-site", "e2e-edge"
LIMIT_KPA, HYSTERESIS_KPA = 293.0, 3.0
HIGH_KPA, LOW_KPA = 297.0, 289.0
"""The pressure stays above HIGH_KPA while parked, and is below LOW_KPA right after the move."""
PUMP_POLL_S = 0.5


@dataclass
class Technicians:
    plumber: SseReader
    electrician: SseReader

    def close(self) -> None:
        self.plumber.close()
        self.electrician.close()


def start_hub(database_url: str, broker: tuple[str, int]) -> HubService:
    """The hub of one process, with the site's registry and a plumber and an electrician on duty."""
    settings = HubSettings(
        database_url=database_url, broker_host=broker[0], broker_port=broker[1], share_group=f"t{uuid.uuid4().hex[:6]}",
        secret_key=SecretStr("bench-secret-not-for-production-0123456789"), http_port=free_port(),
    )  # fmt: skip
    hub = HubService(settings, ingest=True, worker_name="alarms")
    with session_factory(hub.engine).begin() as session:
        import_registry(session, parse_data(demo_registry(SITE_FILE)), Actor("test"))
        site_id = session.scalars(select(Site.id).where(Site.code == SITE)).one()
        for name, skill in (("plumber", "plumbing"), ("electrician", "electrical")):
            user = add_user(session, name, Role.TECHNICIAN, sites=[site_id], phone="13800000002")
            session.add(Technician(user_id=user.id, site_id=site_id, skills=[skill], zone_building_ids=[],
                                   on_duty=True))  # fmt: skip
    hub.start()
    assert hub.ingest is not None and hub.ingest.subscribed.wait(10), "the hub's ingest did not subscribe"
    return hub


def watch(hub: HubService) -> Technicians:
    """Each technician's page, streaming their notifications."""
    base = f"http://{hub.settings.http_host}:{hub.settings.http_port}/api/v1/notifications/stream"
    readers = []
    with session_factory(hub.engine)() as session:
        for name in ("plumber", "electrician"):
            user = session.scalars(select(User).where(User.username == name)).one()
            token = create_token(hub.settings, user.id, user.password_changed_at)
            readers.append(SseReader(base, {"Authorization": f"Bearer {token}"}))
    return Technicians(*readers)


class SteeredClock:
    """The simulators' clock: real time plus an offset we move (forward only, so counters never run back)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def pressure_at(site: RunningSite, t: float) -> float:
    """What the simulated pump reads at simulator time t (its smooth noise, as the simulator computes it)."""
    device = site.devices["pump-station"]
    wobble = device._wobbles["outlet_pressure"]  # the simulator's own noise function, read to pick the moment
    return 300.0 + 15.0 * wobble(t)


def park_high(site: RunningSite, clock: SteeredClock, hold_s: float) -> None:
    """Move the clock to where the pressure stays above HIGH_KPA for ``hold_s`` (the noise repeats within
    97 x 13 s, and stays that high for about 48 s once per slow cycle)."""
    t = clock()
    for _ in range(5000):
        if all(pressure_at(site, t + s / 2) > HIGH_KPA for s in range(int(hold_s * 2) + 1)):
            clock.offset += t - clock()
            return
        t += 0.5
    raise AssertionError(f"the simulated pressure never stays above {HIGH_KPA} kPa for {hold_s} s")


def drop(site: RunningSite, clock: SteeredClock) -> None:
    """Move the clock forward to a moment the pressure is below LOW_KPA for a few seconds."""
    t = clock() + 1
    for _ in range(20000):
        if all(pressure_at(site, t + s) < LOW_KPA for s in (0, 0.5, 1, 1.5, 2)):
            clock.offset += t - clock()
            return
        t += 0.25
    raise AssertionError(f"the simulated pressure never stays below {LOW_KPA} kPa for 2 s")


def edge_config(site: RunningSite, tmp: Path, broker: tuple[str, int]) -> Path:
    data: dict[str, Any] = site.edge_config_data()
    data["broker"] = {"host": broker[0], "port": broker[1], "keepalive_s": 5, "reconnect_min_s": 0.2,
                      "reconnect_max_s": 2}  # fmt: skip
    data["outbox"] = {"path": str(tmp / "outbox.sqlite")}
    data["uplink"] = {"ack_timeout_s": 3, "batch_max_records": 200, "status_interval_s": 2}
    for bus in data["buses"]:
        bus.update(timeout_s=0.3, backoff_initial_s=2)
    for device in data["devices"]:
        interval = PUMP_POLL_S if device["name"] == "pump-station" else 10.0
        device["poll_intervals"] = dict.fromkeys(site.devices[device["name"]].profile.poll_groups, interval)
    data["rules"] = [{"name": "pump-low-pressure", "device": "pump-station", "point": "outlet_pressure",
                      "below": LIMIT_KPA, "hysteresis": HYSTERESIS_KPA, "min_duration_s": 0,
                      "severity": "critical"}]  # fmt: skip
    path = tmp / "edge.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextmanager
def edge_agent(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "deploy.cli", "edge", "run", str(config)], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class EdgeRun:
    latency_s: float
    """From the moment the pressure dropped to the plumber's page receiving the ticket."""
    notification: dict[str, Any]
    electrician_events: int


def pressure_drop_to_technician(hub: HubService, tmp: Path, broker: tuple[str, int]) -> EdgeRun:
    """Run the site and the edge agent, drop the pressure, and time it until the plumber is told."""
    clock = SteeredClock()
    with ExitStack() as stack:
        site = stack.enter_context(start_site(SITE_FILE, clock=clock))
        park_high(site, clock, hold_s=30)
        technicians = watch(hub)
        stack.callback(technicians.close)
        agent = stack.enter_context(edge_agent(edge_config(site, tmp, broker), tmp / "edge.log"))
        wait_until(lambda: _pump_readings(hub) >= 3 or agent.poll() is not None, 20, "pump readings at the hub")
        assert agent.poll() is None, (tmp / "edge.log").read_text()[-3000:]
        drop(site, clock)
        dropped = time.monotonic()
        wait_until(lambda: bool(technicians.plumber.events), 10, "the plumber's notification")
        arrived, notification = technicians.plumber.events[0]
        return EdgeRun(arrived - dropped, notification, len(technicians.electrician.events))


def _pump_readings(hub: HubService) -> int:
    with hub.engine.connect() as conn:
        query = (
            select(func.count())
            .select_from(Sample)
            .join(Series, Series.id == Sample.series_id)
            .where(Series.device == "pump-station", Series.point == "outlet_pressure")
        )
        return int(conn.scalar(query) or 0)


def stop_hub(hub: HubService) -> None:
    stopper = threading.Thread(target=hub.stop)
    stopper.start()
    stopper.join(30)
