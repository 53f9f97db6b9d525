"""Storing checked messages, on SQLite and PostgreSQL: idempotency by (edge, seq), gaps, acked_through,
records_dropped accounting, liveness, and the two kinds of database failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from cloud.db import make_engine
from cloud.ingest.intake import Accepted, Incoming, Rejected, accept
from cloud.ingest.models import DeadLetter, EdgeStateRow, EventRow
from cloud.ingest.store import DatabaseUnavailable, IngestStore, Outcome
from cloud.schema import create_schema
from cloud.timeseries.models import DirtyHour, Sample, Series
from protocols.messages import Ack, DataBatch, EdgeState, Event, EventType, Quality, Status, decode, encode
from protocols.topics import Uplink as Channel
from tests.cloud.ingest.helpers import data, events, reading, stored_seqs, topic
from tests.support.brokers import free_port

SITE, EDGE = "s1", "e1"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def checked(payload: bytes, channel: Channel = Channel.DATA, edge: str = EDGE, retained: bool = False,
            at: datetime = NOW) -> Accepted | Rejected:  # fmt: skip
    item = accept(Incoming(topic(SITE, edge, channel), payload, at, retained))
    assert item is not None
    return item


def acks(outcome: Outcome) -> list[Ack]:
    decoded = [decode(a.payload) for a in outcome.acks]
    assert all(isinstance(a, Ack) for a in decoded)
    return decoded  # type: ignore[return-value]


def edge_row(engine: Engine, edge: str = EDGE) -> EdgeStateRow:
    with Session(engine) as session:
        found = session.scalars(select(EdgeStateRow).where(EdgeStateRow.site == SITE, EdgeStateRow.edge == edge)).one()
        session.expunge(found)
    return found


def test_a_redelivered_batch_is_stored_once_and_acked_again(engine: Engine) -> None:
    store = IngestStore(engine)
    first = store.write([checked(data(SITE, EDGE, range(1, 11)))])
    again = store.write([checked(data(SITE, EDGE, range(1, 11))), checked(data(SITE, EDGE, range(6, 16)))])
    assert (first.stored, first.duplicates) == (10, 0)
    assert (again.stored, again.duplicates) == (5, 15), "the copy and the overlap are skipped, seqs 11-15 are new"
    assert [(a.acked_through, a.stored) for a in acks(first) + acks(again)] == [(10, (1, 10)), (15, (1, 10)), (15, (6, 15))]
    assert stored_seqs(engine, SITE, EDGE) == list(range(1, 16))
    with engine.connect() as conn:
        values = conn.execute(select(Sample.seq, Sample.value, Sample.ts).order_by(Sample.seq)).all()
    assert [tuple(v) for v in values] == [(s, 1000.0 + s, 1_700_000_000_000 + s * 1000) for s in range(1, 16)]


def test_a_redelivered_seq_keeps_what_was_stored_first(engine: Engine) -> None:
    store = IngestStore(engine)
    store.write([checked(data(SITE, EDGE, [1], value=1.0))])
    outcome = store.write([checked(data(SITE, EDGE, [1], value=2.0))])
    assert (outcome.stored, outcome.duplicates) == (0, 1)
    with engine.connect() as conn:
        assert conn.scalars(select(Sample.value)).all() == [1.0]


def test_a_gap_holds_acked_through_until_it_is_filled(engine: Engine) -> None:
    store = IngestStore(engine)
    outcome = store.write([checked(data(SITE, EDGE, range(1, 11))), checked(data(SITE, EDGE, range(21, 31)))])
    assert [(a.acked_through, a.stored) for a in acks(outcome)] == [(10, (1, 10)), (10, (21, 30))]
    row = edge_row(engine)
    assert (row.stored, row.acked_through, row.gaps()) == ([[1, 10], [21, 30]], 10, [[11, 20]])
    outcome = store.write([checked(data(SITE, EDGE, range(11, 21)))])
    assert acks(outcome)[0].acked_through == 30
    row = edge_row(engine)
    assert (row.stored, row.acked_through, row.gaps()) == ([[1, 30]], 30, [])


def test_a_batch_that_is_not_one_run_is_acked_without_stored(engine: Engine) -> None:
    outcome = IngestStore(engine).write([checked(data(SITE, EDGE, [1, 2, 5]))])
    assert [(a.acked_through, a.stored) for a in acks(outcome)] == [(2, None)]
    assert edge_row(engine).gaps() == [[3, 4]]


def test_records_dropped_at_the_edge_count_as_accounted(engine: Engine) -> None:
    store = IngestStore(engine)
    store.write([checked(data(SITE, EDGE, range(1, 11)))])
    dropped = Event(seq=31, ts=5, type=EventType.RECORDS_DROPPED, message="outbox full",
                    data={"ranges": [[11, 25]], "count": 15})  # fmt: skip
    outcome = store.write([checked(events(SITE, EDGE, [dropped]), Channel.EVENTS)])
    assert acks(outcome)[0].acked_through == 25, "11-25 are accounted for; 26-30 are neither stored nor dropped"
    assert edge_row(engine).gaps() == [[26, 30]]
    outcome = store.write([checked(data(SITE, EDGE, range(26, 31)))])
    assert acks(outcome)[0].acked_through == 31
    row = edge_row(engine)
    assert (row.stored, row.dropped, row.gaps()) == ([[1, 10], [26, 31]], [[11, 25]], [])
    late = store.write([checked(data(SITE, EDGE, [12]))])
    assert late.stored == 1, "a record reported dropped that arrives after all is still data: keep it"
    with engine.connect() as conn:
        event = conn.execute(select(EventRow.seq, EventRow.type, EventRow.message, EventRow.data)).one()
    assert tuple(event) == (31, "records_dropped", "outbox full", {"ranges": [[11, 25]], "count": 15})


def test_one_group_spans_edges_and_repeats(engine: Engine) -> None:
    batch = data(SITE, "e2", range(1, 4))
    outcome = IngestStore(engine).write([
        checked(data(SITE, EDGE, range(1, 6))), checked(batch, edge="e2"), checked(batch, edge="e2"),
        checked(b"not json", edge="e2"),
    ])  # fmt: skip
    assert (outcome.stored, outcome.duplicates, outcome.dead_letters) == (8, 3, 1)
    assert [(a.edge, a.acked_through) for a in acks(outcome)] == [(EDGE, 5), ("e2", 3), ("e2", 3)]
    assert stored_seqs(engine, SITE, "e2") == [1, 2, 3]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Series)) == 2


def test_status_sets_liveness_and_retained_copies_do_not_count_as_seen(engine: Engine) -> None:
    store = IngestStore(engine)

    def status(state: EdgeState, backlog: int = 0) -> bytes:
        return encode(Status(site=SITE, edge=EDGE, sent_at=1, state=state, backlog=backlog, dropped_total=7,
                             agent_version="1.2"))  # fmt: skip

    store.write([checked(status(EdgeState.ONLINE, backlog=40), Channel.STATUS)])
    row = edge_row(engine)
    assert row.online is True and row.dropped_total == 7
    assert row.last_status is not None and (row.last_status["backlog"], row.last_status["agent_version"]) == (40, "1.2")
    later = NOW + timedelta(minutes=5)
    store.write([checked(status(EdgeState.OFFLINE), Channel.STATUS, retained=True, at=later)])
    row = edge_row(engine)
    assert row.online is False
    assert row.last_seen is not None and row.last_seen.replace(tzinfo=UTC) == NOW, "a retained copy is not a sign of life"
    assert row.acked_through == 0 and row.stored == []


def test_an_empty_retained_status_needs_nothing() -> None:
    assert accept(Incoming(topic(SITE, EDGE, Channel.STATUS), b"", NOW, True)) is None


def test_a_message_the_database_refuses_is_dead_lettered_and_the_rest_stored(pg_url: str) -> None:
    engine = make_engine(pg_url)
    create_schema(engine)
    try:
        # Series.quantity is 64 characters on every backend, but only PostgreSQL enforces it.
        refused = data(SITE, "e2", [1], quantity="q" * 100)
        outcome = IngestStore(engine).write([checked(data(SITE, EDGE, range(1, 6))), checked(refused, edge="e2")])
        assert (outcome.stored, outcome.dead_letters) == (5, 1)
        assert [a.edge for a in acks(outcome)] == [EDGE], "no ack for what was not stored: the edge keeps it"
        with engine.connect() as conn:
            letter = conn.execute(select(DeadLetter.reason, DeadLetter.payload, DeadLetter.edge)).one()
        assert letter.reason.startswith("the database refused it: StringDataRightTruncation: value too long")
        assert (letter.payload, letter.edge) == (refused, "e2")
        assert stored_seqs(engine, SITE, "e2") == []
    finally:
        engine.dispose()


def test_an_unreachable_database_raises_and_stores_nothing() -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", connect_args={"connect_timeout": 2})
    try:
        with pytest.raises(DatabaseUnavailable, match="OperationalError: connection failed"):
            IngestStore(engine).write([checked(data(SITE, EDGE, [1])), checked(b"junk")])
    finally:
        engine.dispose()


def test_a_missing_schema_is_unavailable_not_a_reason_to_dead_letter(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/empty.sqlite")
    try:
        with pytest.raises(DatabaseUnavailable, match="no such table"):
            IngestStore(engine).write([checked(data(SITE, EDGE, [1]))])
    finally:
        engine.dispose()


def test_readings_keep_their_series_and_quality(engine: Engine) -> None:
    batch = [reading(1, "m1", "voltage_a", quantity="voltage_v"), reading(2, "m2", "flow", quantity="flow_m3h",
             quality=Quality.OUT_OF_RANGE)]  # fmt: skip
    IngestStore(engine).write([checked(encode(DataBatch(site=SITE, edge=EDGE, sent_at=1, records=batch)))])
    with engine.connect() as conn:
        rows = conn.execute(
            select(Series.device, Series.point, Series.quantity, Sample.seq, Sample.quality)
            .join(Sample, Sample.series_id == Series.id).order_by(Sample.seq)
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [("m1", "voltage_a", "voltage_v", 1, 0), ("m2", "flow", "flow_m3h", 2, 1)]


def test_new_samples_mark_their_hours_for_the_rollups(engine: Engine) -> None:
    hour = 3_600_000
    start = 1_700_000_000_000 - 1_700_000_000_000 % hour
    store = IngestStore(engine)
    batch = data(SITE, EDGE, [1, 2, 3])
    spread = encode(DataBatch(site=SITE, edge=EDGE, sent_at=1, records=[
        reading(4, ts=start), reading(5, ts=start + hour - 1), reading(6, ts=start + hour), reading(7, "m2", ts=start),
    ]))  # fmt: skip
    store.write([checked(batch), checked(spread)])
    with engine.connect() as conn:
        ids = {device: id_ for device, id_ in conn.execute(select(Series.device, Series.id))}
        marks = {tuple(r) for r in conn.execute(select(DirtyHour.series_id, DirtyHour.hour_start))}
        assert marks == {(ids["m1"], start), (ids["m1"], start + hour), (ids["m2"], start)}
        conn.execute(delete(DirtyHour))
        conn.commit()
    store.write([checked(spread)])
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(DirtyHour)) == 0, "a re-delivery changes no hour"
