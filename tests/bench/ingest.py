"""Hub ingest rate and Ack latency: batches through Mosquitto into PostgreSQL, committed, then acked.

Hub worker processes (``python -m cloud.ingest``; one unless asked: ``python -m tests.bench.ingest 2``)
against a scratch PostgreSQL database; this process plays EDGES edges, each keeping WINDOW batches of BATCH
readings in flight the way edge.uplink does (the next batch goes out when an Ack frees a slot). Latency is
publish -> Ack received, under that full load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from cloud.db import make_engine
from cloud.schema import create_schema
from protocols.messages import DataBatch, Reading, encode
from protocols.topics import EdgeTopics, Uplink

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
EDGES = 8
BATCH = 500
BATCHES_PER_EDGE = 150
WINDOW = 8
"""Batches in flight per edge (edge.config.UplinkConfig.max_inflight_batches defaults to 8)."""
DEVICES = 50


def _payload(site: str, edge: str, first: int) -> bytes:
    records = [
        Reading(seq=seq, ts=1_700_000_000_000 + seq * 1000, device=f"m{seq % DEVICES}", point="energy_import",
                quantity="energy_import_kwh", value=1000.0 + seq)
        for seq in range(first, first + BATCH)
    ]  # fmt: skip
    return encode(DataBatch(site=site, edge=edge, sent_at=int(time.time() * 1000), records=records))


class _Edges:
    """Publishes every edge's batches with a window per edge; records when each Ack comes back."""

    def __init__(self, host: str, port: int, site: str, payloads: dict[str, list[bytes]]) -> None:
        self.site, self.payloads = site, payloads
        self.sent: dict[tuple[str, int], float] = {}
        self.latencies: list[float] = []
        self.acked: dict[str, int] = dict.fromkeys(payloads, 0)
        self._slots = {edge: threading.Semaphore(WINDOW) for edge in payloads}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.done = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-edges-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(EDGES * WINDOW + 10)
        self.client.on_connect = lambda c, *_: c.subscribe(f"eh/v1/{site}/+/down/ack", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_ack
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "bench edges could not subscribe to acks"

    def _on_ack(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        ack = json.loads(msg.payload)
        edge, (first, _last) = ack["edge"], ack["stored"]
        with self._lock:
            sent = self.sent.pop((edge, first), None)
            if sent is None:
                return
            self.latencies.append(now - sent)
            self.acked[edge] = max(self.acked[edge], ack["acked_through"])
            if all(through == len(self.payloads[e]) * BATCH for e, through in self.acked.items()):
                self.done.set()
        self._slots[edge].release()

    def publish_all(self) -> None:
        for i in range(max(len(p) for p in self.payloads.values())):
            for edge, payloads in self.payloads.items():
                if i < len(payloads):
                    self._slots[edge].acquire()
                    with self._lock:
                        self.sent[(edge, i * BATCH + 1)] = time.perf_counter()
                    info = self.client.publish(EdgeTopics(self.site, edge).up(Uplink.DATA), payloads[i], qos=1)
                    assert info.rc == mqtt.MQTT_ERR_SUCCESS, mqtt.error_string(info.rc)

    def first_answer(self, timeout_s: float) -> None:
        """Publish the only batch of the only edge until the worker acks it: it is subscribed, series exist."""
        ((edge, (payload,)),) = self.payloads.items()
        deadline = time.monotonic() + timeout_s
        while not self.done.is_set():
            assert time.monotonic() < deadline, "the ingest worker did not answer"
            with self._lock:
                self.sent[(edge, 1)] = time.perf_counter()
            self.client.publish(EdgeTopics(self.site, edge).up(Uplink.DATA), payload, qos=1)
            self.done.wait(1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _forget_session(host: str, port: int, client_id: str) -> None:
    """Drop the worker's persistent session from the broker."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(host, port, clean_start=True)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def run(host: str = "127.0.0.1", port: int = 1883, workers: int = 1) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    site, database = f"bench-{tag}", f"eh_bench_{tag}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    env = {**os.environ, "EH_DATABASE_URL": url, "EH_BROKER_HOST": host, "EH_BROKER_PORT": str(port),
           "EH_SHARE_GROUP": f"bench-{tag}", "EH_MQTT_V5": "true"}  # fmt: skip
    names = [f"w{n}" for n in range(1, workers + 1)]
    procs = [
        subprocess.Popen([sys.executable, "-m", "cloud.ingest", "--worker", name, "--site", site], cwd=REPO, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in names
    ]  # fmt: skip
    edges: _Edges | None = None
    try:
        warmup = _Edges(host, port, site, {"warmup": [_payload(site, "warmup", 1)]})
        warmup.first_answer(30)
        warmup.close()
        payloads = {f"edge-{n}": [_payload(site, f"edge-{n}", 1 + i * BATCH) for i in range(BATCHES_PER_EDGE)]
                    for n in range(EDGES)}  # fmt: skip
        edges = _Edges(host, port, site, payloads)
        started = time.perf_counter()
        edges.publish_all()
        assert edges.done.wait(120), "not every batch was acked"
        elapsed = time.perf_counter() - started
        readings = EDGES * BATCHES_PER_EDGE * BATCH
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            stored = conn.execute("SELECT count(*) FROM samples").fetchone()
        assert stored is not None and stored[0] == readings + BATCH, f"{stored} samples stored, not {readings + BATCH}"
        latencies = sorted(edges.latencies)
    finally:
        if edges is not None:
            edges.close()
        for proc, name in zip(procs, names, strict=True):
            proc.terminate()
            proc.wait(20)
            _forget_session(host, port, f"eh-hub-bench-{tag}-{name}")
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return {
        "ingest_readings_per_s": round(readings / elapsed),
        "ingest_latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "ingest_latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
    }


if __name__ == "__main__":
    for name, value in run(workers=int(sys.argv[1]) if len(sys.argv) > 1 else 1).items():
        print(f"{name}: {value}")
