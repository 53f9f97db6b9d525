"""A whole hub process (cloud.service.HubService: ingest over MQTT, alarm worker, dispatcher, HTTP) on the small
simulated site of tests/e2e/site.yaml, with two technicians watching their live notification streams; and the
edge agent polling the simulated pump room, whose outlet pressure a test drops below the edge rule's limit.

Shared by the end-to-end test and the alarm_notify bench. The pressure drop: the simulated pump's pressure is
300 kPa plus smooth noise of +-15 kPa as a function of the simulators' clock; the site runs on a clock that
is ours to move, parked where the pressure stays high, then moved forward to a moment where it is low. The
edge polls the next value and its rule fires: that is the threshold crossing, at a known instant. Parked
high again, the edge clears the alarm; the bench repeats such rounds (pressure_drops_to_technician).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr
from sqlalchemy import func, select

from cloud.alarms.models import Alarm, AlarmState
from cloud.audit.services import Actor
from cloud.auth.models import Role, User
from cloud.auth.security import create_token
from cloud.db import session_factory
from cloud.registry.demo import demo_registry
from cloud.registry.importer import import_registry, parse_data
from cloud.registry.models import Site
from cloud.service import HubService
from cloud.settings import HubSettings
from cloud.tickets.models import Technician, Ticket
from cloud.timeseries.models import Sample, Series
from deploy import cli as deploy_cli
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
RULE = "pump-low-pressure"


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


def edge_config(site: RunningSite, tmp: Path, broker: tuple[str, int], rule: str) -> Path:
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
    data["rules"] = [{"name": rule, "device": "pump-station", "point": "outlet_pressure",
                      "below": LIMIT_KPA, "hysteresis": HYSTERESIS_KPA, "min_duration_s": 0,
                      "severity": "critical"}]  # fmt: skip
    path = tmp / f"edge-{rule}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


AGENTS = multiprocessing.get_context("forkserver")
"""Edge agents are forked from a server that has imported them once: a round's agent starts in milliseconds,
not after seconds of imports on this machine's CPU."""
AGENTS.set_forkserver_preload(["edge.agent", __name__])


def _run_agent(config: str, log: str) -> None:
    """``estatehub edge run CONFIG`` in a forked process, its output to ``log``."""
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(out, 1)
    os.dup2(out, 2)
    deploy_cli.main(["edge", "run", config])


@contextmanager
def edge_agent(config: Path, log: Path) -> Iterator[BaseProcess]:
    """The real edge agent, until the block ends: stopped by SIGTERM as a service manager would."""
    agent = AGENTS.Process(target=_run_agent, args=(str(config), str(log)), name="edge-agent")
    agent.start()
    try:
        yield agent
    finally:
        agent.terminate()
        agent.join(10)
        if agent.is_alive():
            agent.kill()
            agent.join()


@dataclass
class EdgeRun:
    """One round: the pressure dropped, the plumber was told, the pressure recovered and the alarm cleared."""

    rule: str
    """The edge rule this round's agent ran (its alarm's source at the hub)."""
    latency_s: float
    """From the moment the pressure dropped to the plumber's page receiving the new ticket."""
    notification: dict[str, Any]
    electrician_events: int
    """Notifications the electrician had received by the end of the round."""


def pressure_drop_to_technician(hub: HubService, tmp: Path, broker: tuple[str, int]) -> EdgeRun:
    """Run the site and the edge agent, drop the pressure once, and time it until the plumber is told."""
    return pressure_drops_to_technician(hub, tmp, broker, rounds=1)[0]


def pressure_drops_to_technician(hub: HubService, tmp: Path, broker: tuple[str, int], rounds: int) -> list[EdgeRun]:
    """``rounds`` fault episodes on the running site, one after the other, each a new alarm and a new ticket.

    The hub treats an edge alarm that comes back within DEFAULT_FLAP_WINDOW_S (300 s) of clearing as the same
    episode (reopened, no new ticket), and edge alarms have no hub rule to shorten that window. So each round's
    edge agent runs its own rule, ``pump-low-pressure-<n>`` (same point, limit and hysteresis, no minimum
    duration): the hub sees a fault it has not seen before, not a flap. A round starts its agent (reusing the
    outbox, so event seqs keep rising) and waits for its readings at the hub. A reading has just arrived then,
    so the drop is put off by a pseudo-random part of the poll interval (seeded by the round): the crossing
    falls anywhere in the poll cycle, as a real fault's does, not always just after a poll. Then it drops the
    pressure, times the plumber's ``ticket.assigned`` for the ticket of this round's alarm, parks the pressure
    high again, waits for the hub to clear the alarm (its ticket moves to verify) and stops the agent. Agents
    are forked from a server that imported them (AGENTS), so a round takes about 2 s, not 5.
    """
    clock = SteeredClock()
    with ExitStack() as stack:
        site = stack.enter_context(start_site(SITE_FILE, clock=clock))
        park_high(site, clock, hold_s=30)
        technicians = watch(hub)
        stack.callback(technicians.close)
        runs = []
        for n in range(1, rounds + 1):
            rule, readings = f"{RULE}-{n}", _pump_readings(hub)
            with edge_agent(edge_config(site, tmp, broker, rule), tmp / "edge.log") as agent:
                wait_until(partial(_ready, hub, readings + 2, agent), 20, "pump readings at the hub")
                assert agent.is_alive(), (tmp / "edge.log").read_text()[-3000:]
                time.sleep(random.Random(n).uniform(0, PUMP_POLL_S))  # a fault comes at any moment of a poll cycle
                drop(site, clock)
                dropped = time.monotonic()
                arrived, notification = _assignment(hub, technicians.plumber, rule)
                park_high(site, clock, hold_s=30)
                wait_until(partial(_cleared, hub, rule), 10, f"the hub clearing the alarm of {rule}")
            runs.append(EdgeRun(rule, arrived - dropped, notification, len(technicians.electrician.events)))
        return runs


def _assignment(hub: HubService, plumber: SseReader, rule: str) -> tuple[float, dict[str, Any]]:
    """The plumber's ``ticket.assigned`` for the ticket of this rule's alarm (not a re-dispatch of an older
    ticket), with when it arrived."""
    found: list[tuple[float, dict[str, Any]]] = []

    def arrived() -> bool:
        with hub.engine.connect() as conn:
            ticket = conn.scalar(
                select(Ticket.id).join(Alarm, Alarm.id == Ticket.alarm_id).where(Alarm.source_key == _source(rule))
            )
        found[:] = [(at, e) for at, e in list(plumber.events)
                    if e["kind"] == "ticket.assigned" and e["data"]["ticket_id"] == ticket][:1]  # fmt: skip
        return bool(found)

    wait_until(arrived, 10, f"the plumber's notification of the ticket of {rule}")
    return found[0]


def _ready(hub: HubService, readings: int, agent: BaseProcess) -> bool:
    """The hub has ``readings`` pump readings (the agent polls and its uplink works), or the agent died."""
    return _pump_readings(hub) >= readings or not agent.is_alive()


def _cleared(hub: HubService, rule: str) -> bool:
    with hub.engine.connect() as conn:
        state = conn.scalar(select(Alarm.state).where(Alarm.source_key == _source(rule)))
        return state is AlarmState.CLEARED


def _source(rule: str) -> str:
    """How the hub names the source of an edge rule's alarms."""
    return f"edge:{EDGE}:{rule}"


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
