"""Simulated site -> edge agent process -> Mosquitto -> hub worker process -> PostgreSQL.

A passive listener on the edge's uplink records what the edge produced; the database must end up with
exactly that, by seq, each record once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cloud.db import make_engine
from cloud.ingest.models import EdgeStateRow, EventRow
from cloud.schema import create_schema
from cloud.timeseries.models import QUALITY_CODES, Sample, Series
from edge.outbox import Outbox
from firmware_sims.faults import Fault, FaultKind
from firmware_sims.site import RunningSite, start_site
from protocols.messages import Event, EventType, Reading
from protocols.topics import EdgeTopics
from tests.cloud.ingest.helpers import REPO, ProcessWorker, hub_settings, stored_seqs, tag, wait_stable
from tests.support.ackhub import Hub, forget_edge, wait_until

SITE_FILE = REPO / "tests" / "e2e" / "site.yaml"


def edge_config(site: RunningSite, tmp_path: Path, host: str, port: int) -> tuple[Path, EdgeTopics]:
    data: dict[str, Any] = site.edge_config_data()
    data["site"], data["edge"] = f"hub-e2e-{tag()}", "edge-1"
    data["broker"] = {"host": host, "port": port, "keepalive_s": 5, "reconnect_min_s": 0.2, "reconnect_max_s": 2}
    data["outbox"] = {"path": str(tmp_path / "outbox.sqlite")}
    data["uplink"] = {"ack_timeout_s": 3, "batch_max_records": 200, "status_interval_s": 2}
    for bus in data["buses"]:
        bus.update(timeout_s=0.3, backoff_initial_s=2)
    for device in data["devices"]:
        device["poll_intervals"] = dict.fromkeys(site.devices[device["name"]].profile.poll_groups, 1.0)
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, EdgeTopics(data["site"], data["edge"])


def edge_state(engine: Engine, topics: EdgeTopics) -> EdgeStateRow | None:
    with Session(engine) as session:
        row = session.scalars(
            select(EdgeStateRow).where(EdgeStateRow.site == topics.site, EdgeStateRow.edge == topics.edge)
        ).one_or_none()
        if row is not None:
            session.expunge(row)
    return row


def assert_same_records(engine: Engine, topics: EdgeTopics, produced: list[Reading | Event]) -> None:
    where = (Series.site == topics.site, Series.edge == topics.edge)
    with engine.connect() as conn:
        samples = {
            r.seq: r for r in conn.execute(
                select(Sample.seq, Sample.ts, Sample.value, Sample.quality, Series.device, Series.point, Series.quantity)
                .join(Series, Series.id == Sample.series_id).where(*where)
            )
        }  # fmt: skip
        events = {
            e.seq: e
            for e in conn.execute(select(EventRow).where(EventRow.site == topics.site, EventRow.edge == topics.edge))
        }
    for record in produced:
        if isinstance(record, Reading):
            row = samples[record.seq]
            assert (row.ts, row.value, row.quality, row.device, row.point, row.quantity) == (
                record.ts, record.value, QUALITY_CODES[record.quality], record.device, record.point, record.quantity
            ), record  # fmt: skip
        else:
            row = events[record.seq]
            assert (row.ts, row.type, row.device, row.point, row.message, row.data) == (
                record.ts, record.type.value, record.device, record.point, record.message, record.data
            ), record  # fmt: skip


@pytest.mark.slow
def test_site_to_edge_to_hub_stores_each_record_once(pg_url: str, shared_broker: tuple[str, int],
                                                    tmp_path: Path) -> None:  # fmt: skip
    host, port = shared_broker
    engine = make_engine(pg_url)
    create_schema(engine)
    with start_site(SITE_FILE) as site:
        config, topics = edge_config(site, tmp_path, host, port)
        observer = Hub(host, port, topics.site, ack=False)
        worker = ProcessWorker(hub_settings(pg_url), "w1", topics.site, tmp_path / "worker.log")
        edge: subprocess.Popen[bytes] | None = None
        try:
            worker.start()
            with (tmp_path / "edge.log").open("ab") as log:
                edge = subprocess.Popen([sys.executable, "-m", "deploy.cli", "edge", "run", str(config)], cwd=REPO,
                                        stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            wait_until(lambda: len(stored_seqs(engine, topics.site, topics.edge)) > 100, 30, "readings in the hub")
            site.scanners["gate-scanner"].scan("GUARD-0042")
            time.sleep(3)
            for device in site.devices.values():  # the edge stops producing, apart from device_offline events
                device.set_fault(Fault(kind=FaultKind.NO_RESPONSE))

            def acked() -> int:
                row = edge_state(engine, topics)
                return row.acked_through if row else 0

            through = wait_stable(acked, 4, 90, "the hub's acked_through")
            assert edge.poll() is None, (tmp_path / "edge.log").read_text()[-3000:]
            edge.send_signal(signal.SIGTERM)
            assert edge.wait(20) == 0
            wait_until(lambda: (row := edge_state(engine, topics)) is not None and row.online is False, 10,
                       "the edge's offline status")  # fmt: skip
        finally:
            if edge is not None and edge.poll() is None:
                edge.kill()
            worker.close()
            observer.close()
            forget_edge(host, port, f"eh-edge-{topics.site}-{topics.edge}", topics)
    outbox = Outbox(tmp_path / "outbox.sqlite", max_records=1_000_000, max_age_s=86400)
    stats = outbox.stats()
    outbox.close()
    assert (stats.last_seq, stats.backlog) == (through, 0), "the edge holds nothing the hub has not acked"
    assert stored_seqs(engine, topics.site, topics.edge) == list(range(1, through + 1)), "each record once"
    produced = observer.stored_records(topics.edge)
    assert [r.seq for r in produced] == list(range(1, through + 1)) and observer.conflicts == []
    assert_same_records(engine, topics, produced)
    (scan,) = [r for r in produced if isinstance(r, Event) and r.type is EventType.PATROL_SCAN]
    assert scan.data["code"] == "GUARD-0042"
    row = edge_state(engine, topics)
    assert row is not None and row.gaps() == [] and row.last_status is not None
    assert set(row.last_status["links"]) == set(site.devices), "link health per device, from the status"
    engine.dispose()
