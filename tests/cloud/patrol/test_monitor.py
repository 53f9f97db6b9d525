"""Live misses: the alert is queued the moment a checkpoint's window closes unscanned, not before."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select

from cloud.auth.models import User
from cloud.patrol.models import CheckpointResult
from cloud.patrol.monitor import MAX_SLEEP, PatrolMonitor, next_deadline, sweep
from cloud.patrol.scans import accept_offline_scan, accept_online_scan, issue_challenge
from cloud.tickets.models import Ticket
from tests.cloud.patrol.conftest import World, at, notifications


def scan(world: World, name: str, minutes: float) -> None:
    with world.sessions.begin() as session:
        user = session.get_one(User, world.guard.id)
        nonce = issue_challenge(session, user, world.site_x, "tok", at(minutes)).nonce
        accept_online_scan(session, user=user, token="tok", code=world.code(name), nonce=nonce, now=at(minutes))


def test_a_skipped_checkpoint_alerts_at_its_window_close_and_not_before(world: World) -> None:
    scan(world, "A", 2)
    scan(world, "C", 12)  # B skipped
    b_closes = world.slots()["B"].closes_at
    assert b_closes == at(15)
    with world.sessions.begin() as session:
        assert next_deadline(session) == b_closes
        assert sweep(session, b_closes - timedelta(seconds=1)) == []
    assert notifications(world) == []

    with world.sessions.begin() as session:
        missed = sweep(session, b_closes)
    assert [s.checkpoint_id for s in missed] == [world.checkpoints["B"]]
    slots = world.slots()
    assert slots["B"].result is CheckpointResult.MISSED and slots["B"].missed_at == b_closes
    sent = notifications(world)
    assert {n.user_id for n in sent} == {world.guard.id, world.admin.id}
    assert all(n.kind == "patrol.missed" and n.created_at == b_closes for n in sent)
    assert "地下车库" in sent[0].title and "1号楼" in sent[0].body and "-1层" in sent[0].body
    with world.sessions() as session:
        tickets = session.scalars(select(Ticket)).all()
        assert [t.title for t in tickets] == ["漏巡：地下车库"]


def test_a_second_sweep_or_a_second_replica_alerts_once(world: World) -> None:
    with world.sessions.begin() as session:
        first = sweep(session, at(30))
    with world.sessions.begin() as session:
        second = sweep(session, at(31))
    assert len(first) == 3 and second == []
    assert len(notifications(world)) == 3 * 2  # three checkpoints, guard and admin each


def test_the_worker_sleeps_until_the_next_window_closes(engine: Engine, world: World) -> None:
    now = [at(1)]
    monitor = PatrolMonitor(engine, clock=lambda: now[0])
    assert monitor.run_once() == at(1) + MAX_SLEEP  # nothing closes sooner: look again (new rounds) in 30 s
    now[0] = at(9.75)
    assert monitor.run_once() == at(10)  # A closes first (on time until 01:05, late until 01:10)
    assert notifications(world) == []
    now[0] = at(10)
    monitor.run_once()
    assert world.slots()["A"].result is CheckpointResult.MISSED
    assert len(notifications(world)) == 2


def test_an_offline_scan_synced_after_the_alert_still_counts(world: World) -> None:
    with world.sessions.begin() as session:
        sweep(session, at(10))
    assert world.slots()["A"].result is CheckpointResult.MISSED
    with world.sessions.begin() as session:
        user = session.get_one(User, world.guard.id)
        accept_offline_scan(session, user=user, site_id=world.site_x, code=world.code("A"), scanned_at=at(2),
                            client_ref="late-sync", now=at(11))  # fmt: skip
    slot = world.slots()["A"]
    assert slot.result is CheckpointResult.ON_TIME and slot.missed_at == at(10)
