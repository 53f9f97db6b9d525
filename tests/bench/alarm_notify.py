"""Alarm to technician notification latency, through a whole hub process on PostgreSQL and a real Mosquitto.

Two measurements, printed apart:
- ``alarm_to_notify_p50_ms`` / ``alarm_to_notify_p99_ms`` (REPETITIONS runs, one at a time): an edge's
  ``alarm_raised`` event (a new pump alarm each time) published over MQTT -> hub ingest commits it -> the alarm
  evaluator, woken by that commit, raises the alarm -> a ticket is opened and dispatched -> the plumber's page,
  streaming server-sent events, receives ``ticket.assigned``. Timed from the publish to the event's arrival.
- ``alarm_to_notify_edge_ms`` (once): the same, from the edge side: the simulated pump's outlet pressure
  drops below the edge rule's limit (tests/cloud/alarms/pump_site.py moves the simulators' clock) -> the edge
  agent (a real process, polling every 0.5 s) raises the alarm -> outbox -> MQTT -> ... -> the plumber's page.
  It includes up to one poll interval of waiting for the next reading.
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
from tests.cloud.alarms.pump_site import EDGE, SITE, pressure_drop_to_technician, start_hub, stop_hub, watch
from tests.support.brokers import Mosquitto

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REPETITIONS = 200
FIRST_SEQ = 1_000_000
"""Above any seq the real edge agent uses later in the run."""


def _wait(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no notification within {timeout_s} s")
        time.sleep(0.0005)


def run(repetitions: int = REPETITIONS) -> dict[str, float]:
    database = f"eh_bench_alarms_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    with tempfile.TemporaryDirectory(prefix="eh-bench-alarms-") as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir)
        broker.start()
        hub = start_hub(f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}", (broker.host, broker.port))
        try:
            hub_ms = _hub_path(hub, (broker.host, broker.port), repetitions)
            edge = pressure_drop_to_technician(hub, workdir, (broker.host, broker.port))
        finally:
            stop_hub(hub)
            broker.stop()
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    hub_ms.sort()
    return {
        "alarm_to_notify_p50_ms": round(statistics.median(hub_ms), 1),
        "alarm_to_notify_p99_ms": round(hub_ms[min(len(hub_ms) - 1, int(len(hub_ms) * 0.99))], 1),
        "alarm_to_notify_edge_ms": round(edge.latency_s * 1000, 1),
    }


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
