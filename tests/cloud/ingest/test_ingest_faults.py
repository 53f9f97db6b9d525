"""The hub failing under a live edge (its real outbox and uplink): nothing lost, nothing stored twice.

A worker process killed with SIGKILL mid-stream, and PostgreSQL stopped for 30 s (a throwaway instance),
while the edge keeps producing and resending whatever has no Ack.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloud.db import make_engine
from cloud.schema import create_schema
from tests.cloud.ingest.helpers import (
    EdgeSim,
    ProcessWorker,
    ThreadWorker,
    ThrowawayPostgres,
    hub_settings,
    stored_seqs,
    tag,
)
from tests.support.ackhub import wait_until

OUTAGE_S = 30.0


class Producer:
    """Adds readings (and now and then an event) to the edge's outbox at a steady rate, like its pollers."""

    def __init__(self, edge: EdgeSim, per_tick: int = 40, tick_s: float = 0.05) -> None:
        self.edge, self.per_tick, self.tick_s = edge, per_tick, tick_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="producer")

    def _run(self) -> None:
        ticks = 0
        while not self.stop.wait(self.tick_s):
            self.edge.add_readings(self.per_tick)
            ticks += 1
            if ticks % 25 == 0:
                self.edge.add_event(f"tick {ticks}")

    def __enter__(self) -> Producer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def assert_exactly_once(engine: Engine, edge: EdgeSim) -> None:
    wait_until(lambda: edge.outbox.stats().backlog == 0, 60, "the outbox to drain (every record acked)")
    last = edge.outbox.last_seq
    assert stored_seqs(engine, edge.topics.site, edge.topics.edge) == list(range(1, last + 1))


@pytest.fixture
def engine(pg_url: str, shared_broker: tuple[str, int]) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.slow
def test_worker_killed_with_sigkill_mid_stream_and_restarted(engine: Engine, pg_url: str, tmp_path: Path) -> None:
    site = f"kill-{tag()}"
    worker = ProcessWorker(hub_settings(pg_url), "w1", site, tmp_path / "worker.log")
    try:
        worker.start()
        with EdgeSim(tmp_path, site, "e1") as edge:
            with Producer(edge):
                wait_until(lambda: edge.outbox.stats().acked_through > 2000, 20, "acks flowing")
                assert worker.signal(signal.SIGKILL) == -signal.SIGKILL
                time.sleep(0.5)  # an ack published just before the kill may still arrive
                killed_at = edge.outbox.stats().acked_through
                time.sleep(3)  # the edge produces, publishes and resends into the dead worker's session
                assert edge.outbox.stats().acked_through == killed_at, "nobody acks while the worker is dead"
                worker.start()
                wait_until(lambda: edge.outbox.stats().acked_through > killed_at + 2000, 20, "acks after the restart")
            assert_exactly_once(engine, edge)
        assert worker.signal(signal.SIGTERM) == 0, "a clean stop on SIGTERM"
    finally:
        worker.close()
    assert "Traceback" not in worker.log.read_text()


@pytest.mark.slow
def test_postgres_down_for_30_s(shared_broker: tuple[str, int], tmp_path: Path) -> None:
    site = f"pgdown-{tag()}"
    postgres = ThrowawayPostgres()
    try:
        postgres.start()
        engine = make_engine(postgres.url)
        create_schema(engine)
        with ThreadWorker(hub_settings(postgres.url), "w1", site) as worker:
            with EdgeSim(tmp_path, site, "e1") as edge:
                with Producer(edge):
                    wait_until(lambda: edge.outbox.stats().acked_through > 1000, 20, "acks flowing")
                    engine.dispose()
                    postgres.stop()
                    time.sleep(1)  # an ack already on its way may still land
                    stopped_at = edge.outbox.stats()
                    time.sleep(OUTAGE_S)
                    during = edge.outbox.stats()
                    assert during.acked_through == stopped_at.acked_through, "no ack while the database is down"
                    produced = during.last_seq - stopped_at.last_seq
                    assert produced > OUTAGE_S * 400 and during.backlog == stopped_at.backlog + produced, (
                        "the edge holds everything it produced meanwhile"
                    )
                    assert worker.worker.counters.db_retries >= 5
                    postgres.start()
                    wait_until(lambda: edge.outbox.stats().acked_through > during.last_seq, 30, "acks after recovery")
                assert_exactly_once(engine, edge)
            assert worker.worker.counters.dead_letters == 0, "an outage is not the messages' fault"
        engine.dispose()
    finally:
        postgres.remove()
