"""Ingest test helpers: payloads, a worker in a thread or a child process, an edge's outbox and uplink, a
throwaway PostgreSQL that a test may stop, an Ack listener, and what the database holds per edge."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from cloud.db import make_engine
from cloud.ingest.models import EventRow
from cloud.ingest.worker import IngestWorker, client_id
from cloud.settings import HubSettings
from cloud.timeseries.models import Sample, Series
from edge.config import BrokerConfig, UplinkConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.messages import Ack, DataBatch, Event, EventBatch, Reading, decode, encode
from protocols.topics import EdgeTopics
from protocols.topics import Uplink as Channel
from tests.support.ackhub import forget_edge, wait_until
from tests.support.brokers import SHARED_BROKER, free_port

REPO = Path(__file__).resolve().parents[3]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def tag() -> str:
    return uuid.uuid4().hex[:8]


def reading(seq: int, device: str = "m1", point: str = "energy_import", **fields: Any) -> Reading:
    values = {"ts": 1_700_000_000_000 + seq * 1000, "quantity": "energy_import_kwh", "value": 1000.0 + seq} | fields
    return Reading(seq=seq, device=device, point=point, **values)


def data(site: str, edge: str, seqs: Iterable[int], **fields: Any) -> bytes:
    return encode(DataBatch(site=site, edge=edge, sent_at=1, records=[reading(s, **fields) for s in seqs]))


def events(site: str, edge: str, records: list[Event]) -> bytes:
    return encode(EventBatch(site=site, edge=edge, sent_at=1, records=records))


def topic(site: str, edge: str, channel: Channel = Channel.DATA) -> str:
    return EdgeTopics(site, edge).up(channel)


def hub_settings(database_url: str, host: str = SHARED_BROKER[0], port: int = SHARED_BROKER[1]) -> HubSettings:
    """A share group of its own, so nothing else on the shared broker takes this test's messages."""
    return HubSettings(database_url=database_url, broker_host=host, broker_port=port, share_group=f"test-{tag()}")


def forget_session(settings: HubSettings, worker_name: str) -> None:
    """Leave the shared broker as found: drop a worker's persistent session."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id(settings, worker_name), protocol=mqtt.MQTTv5
    )
    client.connect(settings.broker_host, settings.broker_port, clean_start=True)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


class ThreadWorker:
    """An ingest worker on a thread of the test process, so its counters can be read; its MQTT session is
    dropped when it stops unless ``forget`` is False."""

    def __init__(self, settings: HubSettings, name: str, site: str, forget: bool = True, **options: Any) -> None:
        self.settings, self.name, self.forget = settings, name, forget
        self.engine = make_engine(settings.database_url)
        self.worker = IngestWorker(settings, self.engine, name, site=site, **options)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop,), name=f"worker-{name}")

    def __enter__(self) -> ThreadWorker:
        self.thread.start()
        assert self.worker.subscribed.wait(10), "the worker did not subscribe"
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop.set()
        self.thread.join(15)
        self.engine.dispose()
        if self.forget:
            forget_session(self.settings, self.name)
        assert not self.thread.is_alive(), "the worker did not stop"


class ProcessWorker:
    """``python -m cloud.ingest`` in a child process, so it can be killed like a crashed server."""

    def __init__(self, settings: HubSettings, name: str, site: str, log: Path) -> None:
        self.settings, self.name, self.log = settings, name, log
        self.args = [sys.executable, "-m", "cloud.ingest", "--worker", name, "--site", site]
        self.env = os.environ | {
            "EH_DATABASE_URL": settings.database_url,
            "EH_BROKER_HOST": settings.broker_host,
            "EH_BROKER_PORT": str(settings.broker_port),
            "EH_SHARE_GROUP": settings.share_group,
            "EH_MQTT_V5": str(settings.mqtt_v5).lower(),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        ready = self._subscriptions() + 1
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: self._subscriptions() >= ready or not self.alive(), 15, "the worker process to subscribe")
        assert self.alive(), self.log.read_text()[-3000:]

    def _subscriptions(self) -> int:
        return self.log.read_text().count("ingest: subscribed to") if self.log.exists() else 0

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()
        forget_session(self.settings, self.name)


class EdgeSim:
    """The edge's real outbox and uplink, in this process: records leave the outbox only when acked."""

    def __init__(self, workdir: Path, site: str, edge: str, host: str = SHARED_BROKER[0],
                 port: int = SHARED_BROKER[1], ack_timeout_s: float = 2.0) -> None:  # fmt: skip
        self.topics = EdgeTopics(site, edge)
        self.host, self.port = host, port
        self.client_id = f"test-edge-{site}-{edge}"
        self.outbox = Outbox(workdir / f"{edge}.outbox.sqlite", max_records=1_000_000, max_age_s=86400)
        self.uplink = Uplink(
            self.outbox,
            BrokerConfig(host=host, port=port, reconnect_min_s=0.2, reconnect_max_s=1.0),
            self.topics,
            UplinkConfig(batch_max_records=200, max_inflight_batches=8, ack_timeout_s=ack_timeout_s,
                         replay_records_per_s=100_000),  # fmt: skip
            status=dict,
            client_id=self.client_id,
        )

    def add_readings(self, count: int, devices: int = 5) -> None:
        first = self.outbox.last_seq + 1
        self.outbox.add([
            {"kind": "reading", "ts": 1_700_000_000_000 + seq, "device": f"m{seq % devices}", "point": "energy_import",
             "quantity": "energy_import_kwh", "value": float(seq)}
            for seq in range(first, first + count)
        ])  # fmt: skip

    def add_event(self, message: str) -> None:
        self.outbox.add([{"kind": "event", "ts": 1_700_000_000_000, "type": "alarm_raised", "message": message}])

    def __enter__(self) -> EdgeSim:
        self.uplink.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.uplink.stop()
        self.outbox.close()
        forget_edge(self.host, self.port, self.client_id, self.topics)


class AckListener:
    """Every Ack the hub sends to a site's edges."""

    def __init__(self, site: str, host: str = SHARED_BROKER[0], port: int = SHARED_BROKER[1]) -> None:
        self.acks: list[Ack] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-acks-{tag()}")
        self.client.on_connect = lambda c, *_: c.subscribe(f"eh/v1/{site}/+/down/ack", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.wait(5), "could not subscribe to acks"

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        ack = decode(bytes(msg.payload))
        assert isinstance(ack, Ack)
        with self._lock:
            self.acks.append(ack)

    def received(self) -> list[Ack]:
        with self._lock:
            return list(self.acks)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Publisher:
    """Publishes QoS 1 with a bounded number in flight (paho refuses beyond its queue limit)."""

    def __init__(self, host: str = SHARED_BROKER[0], port: int = SHARED_BROKER[1]) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{tag()}")
        self.client.max_inflight_messages_set(100)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish_all(self, messages: Iterable[tuple[str, bytes]]) -> None:
        infos = []
        for topic_, payload in messages:
            info = self.client.publish(topic_, payload, qos=1)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS, mqtt.error_string(info.rc)
            infos.append(info)
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ThrowawayPostgres:
    """A private PostgreSQL 15 on a free port, which a test may stop and start again (the shared one never)."""

    def __init__(self) -> None:
        if os.geteuid() != 0 or not (PG_BIN / "initdb").exists():
            pytest.fail("a throwaway PostgreSQL needs root (to run as user postgres) and PostgreSQL 15 installed")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="eh-pg-"))  # under /tmp, so user postgres can reach it
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", self.dir / "data", "--auth=trust", "-U", "postgres")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str | Path) -> None:
        result = subprocess.run(["runuser", "-u", "postgres", "--", *map(str, args)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.dir / "data", "-o", options, "-l", self.dir / "log", "-w",
                          "start")  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"),
                        "-m", "immediate", "stop"], capture_output=True)  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)


def stored_seqs(engine: Engine, site: str, edge: str) -> list[int]:
    """Every stored record's seq (readings and events), duplicates kept, sorted."""
    with engine.connect() as conn:
        samples = conn.scalars(
            select(Sample.seq).join(Series, Series.id == Sample.series_id).where(Series.site == site, Series.edge == edge)
        ).all()
        event_seqs = conn.scalars(select(EventRow.seq).where(EventRow.site == site, EventRow.edge == edge)).all()
    return sorted([*samples, *event_seqs])


def wait_stable(probe: Any, settle_s: float, timeout_s: float, what: str) -> Any:
    """Wait until ``probe()`` has returned the same value for ``settle_s``; returns that value."""
    last, since, deadline = probe(), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() - since < settle_s:
        assert time.monotonic() < deadline, f"{what} kept changing for {timeout_s:.0f} s"
        time.sleep(0.2)
        value = probe()
        if value != last:
            last, since = value, time.monotonic()
    return last
