"""Outbox commit rate and end-to-end delivery rate (outbox -> Mosquitto -> acking hub -> outbox drained)."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from edge.config import BrokerConfig, UplinkConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.topics import EdgeTopics
from tests.support.ackhub import Hub, forget_edge, wait_until

RECORDS = 50_000
POLL_BATCH = 50
"""Readings one poll of a few devices commits together."""


def reading(i: int) -> dict[str, Any]:
    return {
        "kind": "reading",
        "ts": 1_700_000_000_000 + i,
        "device": f"m{i % 48}",
        "point": "energy_import",
        "quantity": "energy_import_kwh",
        "value": 1000.0 + i,
    }


def run(host: str = "127.0.0.1", port: int = 1883) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(Path(tmp) / "outbox.sqlite", max_records=10_000_000, max_age_s=86400)
        started = time.perf_counter()
        for start in range(0, RECORDS, POLL_BATCH):
            outbox.add([reading(i) for i in range(start, start + POLL_BATCH)])
        commit_s = time.perf_counter() - started

        tag = uuid.uuid4().hex[:8]
        topics, client_id = EdgeTopics(f"bench-{tag}", f"edge-{tag}"), f"bench-edge-{tag}"
        hub = Hub(host, port, topics.site)
        uplink = Uplink(
            outbox,
            BrokerConfig(host=host, port=port),
            topics,
            UplinkConfig(batch_max_records=500, max_inflight_batches=16, replay_records_per_s=1_000_000),
            status=lambda: {},
            client_id=client_id,
        )
        started = time.perf_counter()
        uplink.start()
        try:
            wait_until(lambda: outbox.stats().backlog == 0, 120, "the outbox to drain")
            drain_s = time.perf_counter() - started
        finally:
            uplink.stop()
            hub.close()
            outbox.close()
            forget_edge(host, port, client_id, topics)
    return {
        "outbox_commit_records_per_s": round(RECORDS / commit_s),
        "outbox_commits_per_s": round(RECORDS / POLL_BATCH / commit_s),
        "uplink_delivered_acked_records_per_s": round(RECORDS / drain_s),
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
