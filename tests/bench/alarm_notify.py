"""Alarm to technician notification latency, through a whole hub process on PostgreSQL and a real Mosquitto.

Two measurements, printed apart:
- ``alarm_to_notify_p50_ms`` / ``alarm_to_notify_p99_ms`` (issue 5's figure; EDGE_ROUNDS rounds, one at a
  time): the edge threshold crossing to the technician's notification. The simulated pump's outlet pressure
  drops below the edge rule's limit (tests/cloud/alarms/pump_site.py moves the simulators' clock) -> the edge
  agent (a real process, polling every 0.5 s) raises the alarm -> outbox -> MQTT -> hub ingest -> alarm
  evaluator -> a ticket is opened and dispatched -> the plumber's page, streaming server-sent events, receives
  ``ticket.assigned``. Timed from the clock move to the event's arrival, so it includes the wait for the
  agent's next reading (0 to 0.5 s: the moment of the drop within the poll cycle varies from round to round).
  Each round is a new fault episode: the pressure recovers, the edge clears its alarm and the hub clears it
  too before the next round. The hub would reopen an edge alarm that returns within its 300 s flap window
  (DEFAULT_FLAP_WINDOW_S; edge alarms have no hub rule that could shorten it), so each round's agent runs an
  edge rule of its own (same point, limit and hysteresis, no minimum duration): every round is a new alarm and
  a new ticket, not a flap. See pump_site.pressure_drops_to_technician. The agent's start is not timed.
- ``alarm_hub_path_p50_ms`` / ``alarm_hub_path_p99_ms`` (HUB_REPETITIONS runs, one at a time): the hub's part
  alone: an edge's ``alarm_raised`` event (a new pump alarm each time) published over MQTT -> hub ingest commits
  it -> the alarm evaluator, woken by that commit, raises the alarm -> ticket -> ``ticket.assigned`` on the
  plumber's page. Timed from the publish to the event's arrival.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from cloud.service import HubService
from protocols.messages import Event, EventBatch, EventType, encode
from protocols.topics import EdgeTopics, Uplink
from tests.cloud.alarms.pump_site import EDGE, SITE, pressure_drops_to_technician, start_hub, stop_hub, watch
from tests.support.brokers import Mosquitto

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
HUB_REPETITIONS = 200
EDGE_ROUNDS = 40
FIRST_SEQ = 1_000_000
"""Above any seq the real edge agent uses later in the run."""


def _wait(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no notification within {timeout_s} s")
        time.sleep(0.0005)


def run(repetitions: int = HUB_REPETITIONS, rounds: int = EDGE_ROUNDS) -> dict[str, float]:
    database = f"eh_bench_alarms_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    with tempfile.TemporaryDirectory(prefix="eh-bench-alarms-") as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir)
        broker.start()
        address = (broker.host, broker.port)
        hub = start_hub(f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}", address)
        try:
            hub_ms = _hub_path(hub, address, repetitions)
            edge_ms = [r.latency_s * 1000 for r in pressure_drops_to_technician(hub, workdir, address, rounds)]
        finally:
            stop_hub(hub)
            broker.stop()
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return {
        "alarm_to_notify_p50_ms": _p50(edge_ms),
        "alarm_to_notify_p99_ms": _p99(edge_ms),
        "alarm_hub_path_p50_ms": _p50(hub_ms),
        "alarm_hub_path_p99_ms": _p99(hub_ms),
    }


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def _p99(values: list[float]) -> float:
    """Nearest rank: with fewer than 100 values, the largest."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1)


def _hub_path(hub: HubService, broker: tuple[str, int], repetitions: int) -> list[float]:
    technicians = watch(hub)
    plumber = technicians.plumber
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-edge-{uuid.uuid4().hex[:6]}")
    client.connect(*broker)
    client.loop_start()
    topic = EdgeTopics(SITE, EDGE).up(Uplink.EVENTS)
    latencies = []
    try:
        for n in range(repetitions):
            seen = len(plumber.events)
            now_ms = int(time.time() * 1000)
            event = Event(seq=FIRST_SEQ + n, ts=now_ms, type=EventType.ALARM_RAISED, device="pump-station",
                          point="outlet_pressure", message="outlet_pressure = 150 below 200",
                          data={"rule": f"bench-{n}", "severity": "critical", "value": 150.0})  # fmt: skip
            payload = encode(EventBatch(site=SITE, edge=EDGE, sent_at=now_ms, records=[event]))
            started = time.monotonic()
            client.publish(topic, payload, qos=1)
            _wait(lambda seen=seen: len(plumber.events) > seen, 10)  # type: ignore[misc]
            latencies.append((plumber.events[seen][0] - started) * 1000)
    finally:
        client.loop_stop()
        client.disconnect()
        technicians.close()
    return latencies


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
