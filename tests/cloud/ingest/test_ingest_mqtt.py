"""The worker on the shared Mosquitto and a fresh PostgreSQL database: hostile traffic, shared subscriptions."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from cloud.db import make_engine
from cloud.ingest.models import DeadLetter
from cloud.ingest.store import DEAD_LETTER_KEEP_BYTES
from cloud.schema import create_schema
from protocols.messages import EdgeState, Event, EventType, Status, encode
from protocols.topics import Uplink as Channel
from tests.cloud.ingest.helpers import (
    AckListener,
    Publisher,
    ThreadWorker,
    data,
    events,
    hub_settings,
    stored_seqs,
    tag,
    topic,
)
from tests.support.ackhub import wait_until
from tests.support.brokers import free_port

HOSTILE = 10_000
KEEP = DEAD_LETTER_KEEP_BYTES
CHUNK = 500
"""Published at a time, then waited for: Mosquitto drops what queues beyond 1,000 for one client."""


@pytest.fixture
def engine(pg_url: str, shared_broker: tuple[str, int]) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def hostile(site: str, n: int, rng: random.Random) -> tuple[str, bytes, str]:
    """The n-th hostile message: (topic, payload, the start of the reason the hub must give)."""
    edge = f"e{n % 7}"
    good = json.loads(data(site, edge, [1]))
    kind = n % 10
    if kind == 0:
        return topic(site, edge), b"\xff" + rng.randbytes(n % 300), "payload is not valid UTF-8 JSON"
    if kind == 1:
        return topic(site, edge), json.dumps(good | {"records": "many"}).encode(), "data message invalid at records"
    if kind == 2:
        return topic(site, edge), json.dumps(good | {"v": 99}).encode(), "unsupported schema version 99"
    if kind == 3:
        return topic(site, edge), data(site, "intruder", [n]), "edge 'intruder' of site"
    if kind == 4:
        return topic(site, edge, Channel.EVENTS), data(site, edge, [n]), "a data message on the events channel"
    if kind == 5:
        return f"eh/v1/{site}/{edge}/up/firmware", data(site, edge, [n]), f"topic 'eh/v1/{site}/{edge}/up/firmware'"
    if kind == 6:
        return topic(site, edge), data(site, edge, [n, n]), f"data message has seq {n} more than once"
    if kind == 7:
        dropped = Event(seq=n + 1, ts=1, type=EventType.RECORDS_DROPPED, data={"ranges": [[n + 5, n + 9]]})
        return topic(site, edge, Channel.EVENTS), events(site, edge, [dropped]), "events message invalid at records.0"
    if kind == 8 and n % 500 == 8:
        return topic(site, edge), b"{" + b" " * 70_000 + b"}", "payload of 70002 bytes exceeds the hub's limit"
    return topic(site, edge), b"null", "payload must be a JSON object, got NoneType"


def wait_for_dead_letters(engine: Engine, count: int) -> None:
    def enough() -> bool:
        with engine.connect() as conn:
            return (conn.scalar(select(func.count()).select_from(DeadLetter)) or 0) >= count

    wait_until(enough, 30, f"{count} dead letters")


def test_ten_thousand_hostile_payloads_then_a_valid_batch(engine: Engine, pg_url: str) -> None:
    site = f"hostile-{tag()}"
    rng = random.Random(7)
    sent = [hostile(site, n, rng) for n in range(HOSTILE)]
    acks = AckListener(site)
    publisher = Publisher()
    try:
        with ThreadWorker(hub_settings(pg_url), "w1", site, max_payload_bytes=64 * 1024) as worker:
            for start in range(0, HOSTILE, CHUNK):
                publisher.publish_all((t, p) for t, p, _ in sent[start : start + CHUNK])
                wait_for_dead_letters(engine, start + CHUNK)
            assert worker.thread.is_alive()
            publisher.publish_all([(topic(site, "e1"), data(site, "e1", range(1, 101)))])
            wait_until(lambda: [a.acked_through for a in acks.received()] == [100], 10, "the valid batch's ack")
            counters = worker.worker.counters
    finally:
        publisher.close()
        acks.close()
    assert stored_seqs(engine, site, "e1") == list(range(1, 101))
    assert (counters.dead_letters, counters.stored, counters.db_retries) == (HOSTILE, 100, 0)
    with engine.connect() as conn:
        letters = conn.execute(select(DeadLetter.topic, DeadLetter.payload, DeadLetter.reason, DeadLetter.size)).all()
    reasons = {(t, p[:KEEP]): reason for t, p, reason in sent}
    assert Counter((t, p) for t, p, _, _ in letters) == Counter((t, p[:KEEP]) for t, p, _ in sent), (
        "each hostile message is a dead letter, once, with its payload (cut to 64 KiB)"
    )
    wrong = [(t, r) for t, p, r, _ in letters if not r.startswith(reasons[t, p])]
    assert wrong == [], "each with its reason"
    oversized = [letter for letter in letters if letter.size > KEEP]
    assert len(oversized) == HOSTILE // 500 and all(len(letter.payload) == KEEP for letter in oversized)


def test_two_workers_split_a_shared_subscription_and_store_each_record_once(engine: Engine, pg_url: str) -> None:
    site, settings = f"shared-{tag()}", hub_settings(pg_url)
    edges, batches, size = 6, 40, 50
    messages = [(topic(site, f"e{e}"), data(site, f"e{e}", range(1 + b * size, 1 + (b + 1) * size)))
                for b in range(batches) for e in range(edges)]  # fmt: skip
    publisher = Publisher()
    try:
        with ThreadWorker(settings, "w1", site) as one, ThreadWorker(settings, "w2", site) as two:
            for i in range(0, len(messages), 20):
                publisher.publish_all(messages[i : i + 20] * 2)  # every batch twice: copies meet on both workers
            wait_until(lambda: one.worker.counters.messages + two.worker.counters.messages == 2 * len(messages), 30,
                       "both workers to take every message")  # fmt: skip
            status = encode(Status(site=site, edge="e0", sent_at=1, state=EdgeState.ONLINE))
            publisher.publish_all([(topic(site, "e0", Channel.STATUS), status)])
            wait_until(lambda: one.worker.counters.messages + two.worker.counters.messages > 2 * len(messages), 10,
                       "the status")  # fmt: skip
    finally:
        publisher.close()
    a, b = one.worker.counters, two.worker.counters
    total = edges * batches * size
    assert a.messages > len(messages) // 2 and b.messages > len(messages) // 2, "the broker split the stream"
    assert a.stored > 0 and b.stored > 0
    assert a.dead_letters + b.dead_letters == 0
    assert (a.stored + b.stored, a.duplicates + b.duplicates) == (total, total), "each copy stored once in all"
    for e in range(edges):
        assert stored_seqs(engine, site, f"e{e}") == list(range(1, batches * size + 1))


@pytest.mark.parametrize("mqtt_v5", [True, False], ids=["mqtt5-shared", "mqtt311"])
def test_a_message_is_acknowledged_to_the_broker_only_once_stored(engine: Engine, pg_url: str, mqtt_v5: bool) -> None:
    site = f"puback-{tag()}"
    settings = hub_settings(pg_url).model_copy(update={"mqtt_v5": mqtt_v5})
    unreachable = settings.model_copy(update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"})
    acks, publisher = AckListener(site), Publisher()
    try:
        with ThreadWorker(unreachable, "w1", site, forget=False) as stuck:
            publisher.publish_all([(topic(site, "e1"), data(site, "e1", range(1, 11)))])  # once, never resent
            wait_until(lambda: stuck.worker.counters.db_retries >= 2, 10, "the worker retrying the database")
        assert stuck.worker.counters.messages == 0 and acks.received() == []
        with ThreadWorker(settings, "w1", site) as worker:  # the same session: the broker delivers it again
            wait_until(lambda: [a.acked_through for a in acks.received()] == [10], 10, "the ack")
            # the ack goes out right after the commit; the worker counts the message just after that
            wait_until(lambda: worker.worker.counters.messages == 1, 5, "the worker to count the message once")
    finally:
        publisher.close()
        acks.close()
    assert stored_seqs(engine, site, "e1") == list(range(1, 11))
