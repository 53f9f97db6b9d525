"""End to end against real Mosquitto: every collected record reaches the hub, once as far as the hub can tell.

The ``Hub`` here behaves like the real one: it stores by (edge, seq), so re-deliveries are harmless, and answers
each batch with an Ack whose acked_through is the highest contiguous seq stored (gaps named by a
records_dropped event count as filled) and whose ``stored`` is the batch's (first, last).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.config import BrokerConfig, TlsConfig, UplinkConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.messages import (
    EdgeState,
)
from protocols.topics import EdgeTopics
from protocols.topics import Uplink as Channel
from tests.support.ackhub import Hub, forget_edge, wait_until

Draft = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]
OUTAGE_S = float(os.environ.get("EH_OUTAGE_S", "3"))
"""Broker outage length; the acceptance run sets EH_OUTAGE_S=60."""
STATUS = {"agent_version": "test", "config_version": "cfg-1", "profile_versions": {"chint_dtsu666": 1}}
SECRET = "s3cret-never-logged"


def reading(i: int) -> Draft:
    return {"kind": "reading", "ts": 1_700_000_000_000 + i, "device": f"meter-{i % 40:02d}", "point": "energy_import",
            "quantity": "energy_active_import", "value": 1000.0 + i}


def event(i: int, message: str = "timeout") -> Draft:
    return {"kind": "event", "ts": 1_700_000_000_000 + i, "type": "device_offline", "device": "b1-master",
            "message": message}


@dataclass
class Rig:
    outbox: Outbox
    uplink: Uplink
    hub: Hub
    topics: EdgeTopics

    @property
    def delivered(self) -> set[int]:
        return self.hub.seqs(self.topics.edge)

    def wait_connected(self, timeout_s: float = 5.0) -> None:
        wait_until(lambda: self.uplink.counters().connected, timeout_s, "the uplink to connect")


RigFactory = Callable[..., Rig]


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[RigFactory]:
    made: list[tuple[Rig, str, tuple[str, int]]] = []

    def make(
        broker: tuple[str, int], *, hub: dict[str, Any] | None = None, broker_extra: dict[str, Any] | None = None,
        prefill: list[Draft] | None = None, start: bool = True, **settings: Any,
    ) -> Rig:
        tag = uuid.uuid4().hex[:8]
        topics = EdgeTopics(f"test-{tag}", f"edge-{tag}")
        host, port = broker
        outbox = Outbox(tmp_path / f"outbox-{tag}.sqlite", max_records=1_000_000, max_age_s=86400)
        if prefill:
            outbox.add(prefill)
        config = BrokerConfig(host=host, port=port, keepalive_s=5, reconnect_min_s=0.1, reconnect_max_s=0.5,
                              **(broker_extra or {}))
        client_id = f"test-edge-{tag}"
        uplink = Uplink(outbox, config, topics, UplinkConfig(**settings), status=lambda: STATUS, client_id=client_id)
        rig = Rig(outbox, uplink, Hub(host, port, topics.site, **(hub or {})), topics)
        made.append((rig, client_id, broker))
        if start:
            uplink.start()
        return rig

    yield make
    for rig, client_id, (host, port) in made:
        rig.uplink.stop()
        rig.hub.close()
        rig.outbox.close()
        with contextlib.suppress(OSError):  # a throwaway broker is already gone, and its state with it
            forget_edge(host, port, client_id, rig.topics)


def test_10k_records_arrive_exactly_once_and_leave_the_outbox(shared_broker: tuple[str, int],
                                                              make_rig: RigFactory) -> None:
    rig = make_rig(shared_broker, prefill=[reading(i) for i in range(5000)],
                   batch_max_records=200, ack_timeout_s=10, replay_records_per_s=100_000)
    rig.wait_connected()
    produced = set(range(1, 5001))
    for chunk in range(50):
        drafts = [event(i) if i % 50 == 0 else reading(i) for i in range(chunk * 100, chunk * 100 + 100)]
        produced.update(rig.outbox.add(drafts))
    assert len(produced) == 10_000
    wait_until(lambda: rig.delivered == produced, 20, "all 10k records at the hub")
    wait_until(lambda: rig.outbox.stats().backlog == 0, 5, "the outbox to empty after the acks")
    deliveries = Counter(rig.hub.deliveries.values())
    assert deliveries == {1: 10_000}, f"each seq exactly once, got {deliveries}"
    counters = rig.uplink.counters()
    assert counters.connected and counters.resent_batches == 0 and counters.acked_through == 10_000
    assert counters.published_batches == len(rig.hub.batches) and counters.inflight_batches == 0
    birth = rig.hub.statuses[0]
    assert birth.state is EdgeState.ONLINE and birth.config_version == "cfg-1" and birth.backlog == 5000


def test_unconfirmed_batch_is_resent_after_ack_timeout(shared_broker: tuple[str, int], make_rig: RigFactory) -> None:
    rig = make_rig(shared_broker, hub={"ignore_first": 1}, ack_timeout_s=0.5)
    rig.wait_connected()
    rig.outbox.add([reading(i) for i in range(10)])
    wait_until(lambda: rig.delivered == set(range(1, 11)), 5, "the resent batch to be stored")
    first, again = rig.hub.batches[:2]
    assert first.seqs == again.seqs == list(range(1, 11))
    assert again.at - first.at >= 0.45, "resent before the ack timeout"
    assert rig.uplink.counters().resent_batches == 1
    wait_until(lambda: rig.outbox.stats().backlog == 0, 3, "the outbox to empty")


def test_without_acks_the_outbox_keeps_everything_and_the_window_holds(shared_broker: tuple[str, int],
                                                                       make_rig: RigFactory) -> None:
    rig = make_rig(shared_broker, hub={"ack": False}, batch_max_records=10, max_inflight_batches=3, ack_timeout_s=0.3)
    rig.wait_connected()
    rig.outbox.add([reading(i) for i in range(100)])
    wait_until(lambda: rig.uplink.counters().resent_batches >= 6, 5, "a few rounds of resends")
    distinct = {tuple(b.seqs) for b in rig.hub.batches}
    assert distinct == {tuple(range(1, 11)), tuple(range(11, 21)), tuple(range(21, 31))}, "window exceeded"
    assert rig.outbox.stats().backlog == 100 and rig.uplink.counters().inflight_batches == 3


def test_batches_honour_count_bytes_and_kind(shared_broker: tuple[str, int], make_rig: RigFactory,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig = make_rig(shared_broker, broker_extra={"username": "edge-user", "password": SECRET},
                   batch_max_records=7, batch_max_bytes=1024)
    rig.wait_connected()
    drafts = [reading(i) for i in range(30)] + [event(i, "x" * 300) for i in range(5)] + [reading(i) for i in range(9)]
    produced = set(rig.outbox.add(drafts))
    wait_until(lambda: rig.delivered == produced, 5, "all records at the hub")
    for seen in rig.hub.batches:
        assert len(seen.seqs) <= 7 and seen.size <= 1024, f"batch {seen.seqs[0]}-{seen.seqs[-1]} too big"
        assert seen.seqs == list(range(seen.seqs[0], seen.seqs[-1] + 1)), "a batch is a run of consecutive records"
        assert seen.channel is (Channel.DATA if seen.kind == "data" else Channel.EVENTS)
    kinds = [(b.kind, b.seqs[0]) for b in rig.hub.batches]
    assert ("events", 31) in kinds and ("data", 36) in kinds, "kinds are split where they change"
    assert SECRET not in caplog.text


def test_stop_is_prompt_clean_and_says_offline(shared_broker: tuple[str, int], make_rig: RigFactory) -> None:
    rig = make_rig(shared_broker)
    rig.wait_connected()
    rig.outbox.add([reading(1)])
    wait_until(lambda: rig.outbox.stats().backlog == 0, 3, "the record to be acked")
    stopped_at_ms = int(time.time() * 1000)
    started = time.monotonic()
    rig.uplink.stop()
    assert time.monotonic() - started < 1.0
    assert not rig.uplink.counters().connected
    wait_until(lambda: rig.hub.statuses[-1].state is EdgeState.OFFLINE, 3, "the offline status")
    time.sleep(0.2)  # a will, had the disconnect been unclean, would arrive after it
    last = rig.hub.statuses[-1]
    assert last.state is EdgeState.OFFLINE and last.sent_at >= stopped_at_ms, "the will fired: disconnect was unclean"


def test_tls_failure_never_falls_back_to_plaintext(tmp_path: Path, shared_broker: tuple[str, int],
                                                   make_rig: RigFactory, caplog: pytest.LogCaptureFixture) -> None:
    ca = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "ca.key"),
                    "-out", str(ca), "-days", "1", "-subj", "/CN=estatehub-test-ca"], check=True, capture_output=True)
    # The shared broker speaks plaintext only: a TLS client must keep failing, never connect without TLS.
    rig = make_rig(shared_broker, broker_extra={"tls": TlsConfig(ca_file=ca)})
    rig.outbox.add([reading(i) for i in range(5)])
    time.sleep(1.5)
    assert not rig.uplink.counters().connected
    assert rig.hub.batches == [] and rig.hub.statuses == []
    assert rig.outbox.stats().backlog == 5
    assert "over TLS" in caplog.text


def test_fresh_records_overtake_a_throttled_backlog(shared_broker: tuple[str, int], make_rig: RigFactory) -> None:
    backlog = 3000
    rig = make_rig(shared_broker, prefill=[reading(i) for i in range(backlog)],
                   batch_max_records=100, max_inflight_batches=4, replay_records_per_s=1000)
    rig.wait_connected()
    fresh: list[int] = []
    for i in range(5):
        fresh += rig.outbox.add([reading(i) for _ in range(4)])
        time.sleep(0.1)
    everything = set(range(1, backlog + 1)) | set(fresh)
    wait_until(lambda: rig.delivered == everything, 10, "backlog and fresh records at the hub")
    seen = rig.hub.first_seen
    backlog_times = [seen[s] for s in range(1, backlog + 1)]
    assert max(seen[s] for s in fresh) < max(backlog_times), "fresh records waited behind the backlog"
    assert backlog_times == sorted(backlog_times), "backlog not replayed in seq order"
    assert max(backlog_times) - min(backlog_times) >= 2.0, "backlog replay not throttled to 1000 records/s"


@pytest.mark.slow
@pytest.mark.parametrize("outage_s", [OUTAGE_S])
def test_broker_outage_loses_nothing(mosquitto: Any, make_rig: RigFactory, outage_s: float) -> None:
    rig = make_rig((mosquitto.host, mosquitto.port), batch_max_records=100, ack_timeout_s=1.0,
                   replay_records_per_s=2000)
    rig.wait_connected()
    produced: set[int] = set()
    done = threading.Event()

    def collect() -> None:  # the poller keeps collecting whatever the uplink does
        i = 0
        while not done.is_set():
            produced.update(rig.outbox.add([reading(i + k) for k in range(5)]))
            i += 5
            time.sleep(0.05)

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        time.sleep(0.5)
        mosquitto.stop()
        wait_until(lambda: not rig.uplink.counters().connected, 5, "the uplink to notice the outage")
        time.sleep(outage_s)
        mosquitto.start()
        rig.wait_connected(timeout_s=5)
        time.sleep(0.5)
    finally:
        done.set()
        collector.join()
    wait_until(lambda: rig.delivered >= produced, 10 + len(produced) / 2000, "every record at the hub")
    assert rig.delivered == produced, "the hub holds exactly the produced seqs"
    wait_until(lambda: rig.outbox.stats().backlog == 0, 5, "the outbox to empty")
    redelivered = sum(rig.hub.deliveries.values()) - len(produced)
    assert redelivered >= 0  # re-deliveries are allowed; the hub's (edge, seq) store absorbed them


CHILD = """
import sys, time
from edge.config import BrokerConfig, UplinkConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.topics import EdgeTopics
path, host, port, site, edge, client_id = sys.argv[1:]
outbox = Outbox(path, max_records=1000, max_age_s=86400)
Uplink(outbox, BrokerConfig(host=host, port=int(port), keepalive_s=5), EdgeTopics(site, edge), UplinkConfig(),
       status=lambda: {"agent_version": "child"}, client_id=client_id).start()
time.sleep(60)
"""


@pytest.mark.slow
def test_killed_edge_is_marked_offline_by_its_will(tmp_path: Path, shared_broker: tuple[str, int]) -> None:
    tag = uuid.uuid4().hex[:8]
    topics, client_id = EdgeTopics(f"test-{tag}", f"edge-{tag}"), f"test-edge-{tag}"
    host, port = shared_broker
    hub = Hub(host, port, topics.site)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "outbox.sqlite"), host, str(port),
                              topics.site, topics.edge, client_id], cwd=REPO)
    try:
        wait_until(lambda: any(s.state is EdgeState.ONLINE for s in hub.statuses), 10, "the birth message")
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        wait_until(lambda: hub.statuses[-1].state is EdgeState.OFFLINE, 5, "the will (offline status)")
        late = Hub(host, port, topics.site)  # subscribes after the fact, so it sees only what is retained
        wait_until(lambda: bool(late.statuses), 3, "the retained status")
        late.close()
        (status,) = late.statuses
        assert status.state is EdgeState.OFFLINE and status.agent_version == "child"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        hub.close()
        forget_edge(host, port, client_id, topics)


def test_status_is_refreshed_while_connected(shared_broker: tuple[str, int], make_rig: RigFactory) -> None:
    rig = make_rig(shared_broker, status_interval_s=0.3)
    rig.wait_connected()
    rig.outbox.add([reading(i) for i in range(3)])
    wait_until(lambda: len(rig.hub.statuses) >= 4, 5, "periodic status refreshes")
    assert all(s.state is EdgeState.ONLINE for s in rig.hub.statuses)
    assert rig.hub.statuses[0].backlog == 0 and rig.hub.statuses[-1].config_version == "cfg-1"
