"""Accepting scans: what counts, what is flagged, and what is rejected without a trace."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from cloud.auth.models import User
from cloud.patrol.keys import revoke_key, rotate_key
from cloud.patrol.models import Checkpoint, CheckpointResult, PatrolKey, ScanFlag, ScanSource, Trust
from cloud.patrol.scans import Outcome, ScanRejected, accept_offline_scan, accept_online_scan, issue_challenge
from tests.cloud.patrol.conftest import World, at

TOKEN = "session-token-of-guard1"


def challenge(world: World, user: User, minutes: float, token: str = TOKEN, site: int | None = None) -> str:
    with world.sessions.begin() as session:
        return issue_challenge(session, session.get_one(User, user.id), site or world.site_x, token, at(minutes)).nonce


def online(
    world: World, user: User, code: str, minutes: float, nonce: str | None = None, token: str = TOKEN
) -> Outcome:
    nonce = nonce or challenge(world, user, minutes, token)
    with world.sessions.begin() as session:
        return accept_online_scan(session, user=session.get_one(User, user.id), token=token, code=code, nonce=nonce,
                                  now=at(minutes))  # fmt: skip


def rejected(world: World, user: User, code: str, minutes: float, nonce: str, token: str = TOKEN) -> str:
    """Attempt a scan that must be rejected; returns the reason and checks that no table changed."""
    before = world.counts()
    with pytest.raises(ScanRejected) as caught:
        online(world, user, code, minutes, nonce, token)
    assert world.counts() == before
    return caught.value.reason


def test_an_online_scan_in_its_window_counts_on_time_with_normal_trust(world: World) -> None:
    outcome = online(world, world.guard, world.code("A"), 2)
    assert outcome.scan.counted and outcome.scan.trust is Trust.NORMAL and outcome.scan.source is ScanSource.ONLINE
    assert outcome.scan.scanned_at == at(2)
    assert world.slots()["A"].result is CheckpointResult.ON_TIME


def test_a_forged_signature_is_rejected_and_nothing_is_recorded(world: World) -> None:
    code = world.code("A")
    forged = code[:-4] + ("AAAA" if not code.endswith("AAAA") else "BBBB")
    nonce = challenge(world, world.guard, 2)
    assert "signature is wrong" in rejected(world, world.guard, forged, 2, nonce)
    parts = code.split(".")
    tampered = ".".join([*parts[:4], str(world.checkpoints["C"]), parts[5]])  # A's signature on C's id
    assert "signature is wrong" in rejected(world, world.guard, tampered, 2, nonce)
    assert world.slots()["A"].result is CheckpointResult.PENDING


def test_a_code_copied_from_another_site_is_rejected_and_nothing_is_recorded(world: World) -> None:
    nonce = challenge(world, world.guard, 2)
    assert rejected(world, world.guard, world.code("Y1"), 2, nonce) == "this code belongs to another site"


def test_a_code_of_a_revoked_key_is_rejected_and_nothing_is_recorded(world: World) -> None:
    old_code = world.code("A")
    with world.sessions.begin() as session:
        old = session.scalars(select(PatrolKey).where(PatrolKey.site_id == world.site_x)).one()
        rotate_key(session, world.site_x, at(-60))
        revoke_key(session, old, at(-60))
    nonce = challenge(world, world.guard, 2)
    assert "revoked" in rejected(world, world.guard, old_code, 2, nonce)
    new_code = world.code("A")
    assert new_code != old_code and online(world, world.guard, new_code, 2, nonce).scan.counted


def test_a_rotated_key_keeps_printed_codes_valid_until_revoked(world: World) -> None:
    printed = world.code("A")
    with world.sessions.begin() as session:
        rotate_key(session, world.site_x, at(-60))
    assert world.code("A") != printed
    assert online(world, world.guard, printed, 2).scan.counted


def test_a_replayed_challenge_is_rejected_and_nothing_is_recorded(world: World) -> None:
    nonce = challenge(world, world.guard, 2)
    online(world, world.guard, world.code("A"), 2, nonce)
    assert "used already" in rejected(world, world.guard, world.code("A"), 3, nonce)


def test_a_scan_replayed_from_another_guards_session_is_rejected_and_nothing_is_recorded(world: World) -> None:
    nonce = challenge(world, world.other_guard, 2, token="session-token-of-guard2")
    assert "another session" in rejected(world, world.guard, world.code("A"), 2, nonce)
    own_challenge_other_session = challenge(world, world.guard, 2, token="an-older-session")
    assert "another session" in rejected(world, world.guard, world.code("A"), 2, own_challenge_other_session)


def test_an_expired_challenge_is_rejected(world: World) -> None:
    nonce = challenge(world, world.guard, 0)
    assert "expired" in rejected(world, world.guard, world.code("A"), 5, nonce)


def test_repeated_scans_of_a_checkpoint_in_a_round_count_once(world: World) -> None:
    first = online(world, world.guard, world.code("A"), 2)
    again = online(world, world.guard, world.code("A"), 3)
    assert first.scan.counted and not again.scan.counted and again.scan.flag is ScanFlag.REPEAT
    assert world.slots()["A"].scan_id == first.scan.id


def test_a_scan_outside_any_window_is_flagged_and_not_counted(world: World) -> None:
    outcome = online(world, world.guard, world.code("A"), 45)
    assert not outcome.scan.counted and outcome.scan.flag is ScanFlag.OUTSIDE_WINDOW and outcome.slot is None
    assert world.slots()["A"].scan_id is None


def test_a_guard_not_assigned_to_the_round_is_flagged_not_counted(world: World) -> None:
    outcome = online(world, world.other_guard, world.code("A"), 2, token="session-token-of-guard2")
    assert outcome.scan.flag is ScanFlag.NOT_ASSIGNED and not outcome.scan.counted
    assert world.slots()["A"].scan_id is None


def test_early_late_and_out_of_order_scores(world: World) -> None:
    online(world, world.guard, world.code("A"), 8)  # on time until 01:05, late until 01:10
    online(world, world.guard, world.code("C"), 9.5)  # C before B: B comes out of order
    online(world, world.guard, world.code("B"), 10)
    slots = world.slots()
    assert slots["A"].result is CheckpointResult.LATE
    assert slots["C"].result is CheckpointResult.ON_TIME
    assert slots["B"].result is CheckpointResult.OUT_OF_ORDER


def test_a_checkpoint_scanned_before_its_on_time_window_is_early(world: World) -> None:
    online(world, world.guard, world.code("A"), 1)
    online(world, world.guard, world.code("B"), 2)  # B is due 01:07 +- 3 min
    slots = world.slots()
    assert slots["A"].result is CheckpointResult.ON_TIME and slots["B"].result is CheckpointResult.EARLY


def test_an_offline_scan_keeps_the_phone_time_and_low_trust_and_syncs_once(world: World) -> None:
    def sync() -> Outcome:
        with world.sessions.begin() as session:
            return accept_offline_scan(session, user=session.get_one(User, world.guard.id), site_id=world.site_x,
                                       code=world.code("A"), scanned_at=at(2), client_ref="q-1", now=at(40))  # fmt: skip

    first, second = sync(), sync()
    assert first.scan.id == second.scan.id
    assert first.scan.trust is Trust.LOW and first.scan.source is ScanSource.OFFLINE
    assert first.scan.scanned_at == at(2) and first.scan.received_at == at(40)
    assert world.slots()["A"].result is CheckpointResult.ON_TIME


def test_an_offline_scan_from_the_future_is_rejected(world: World) -> None:
    before = world.counts()
    with world.sessions.begin() as session, pytest.raises(ScanRejected, match="in the future"):
        accept_offline_scan(session, user=session.get_one(User, world.guard.id), site_id=world.site_x,
                            code=world.code("A"), scanned_at=at(10) + timedelta(minutes=5), client_ref="q-2",
                            now=at(10))  # fmt: skip
    assert world.counts() == before


def test_a_geofenced_checkpoint_refuses_a_phone_elsewhere(world: World) -> None:
    with world.sessions.begin() as session:
        checkpoint = session.get_one(Checkpoint, world.checkpoints["A"])
        checkpoint.lat, checkpoint.lon, checkpoint.geofence_m = 31.2304, 121.4737, 50

    def attempt(position: tuple[float, float]) -> Outcome:
        nonce = challenge(world, world.guard, 2)
        with world.sessions.begin() as session:
            return accept_online_scan(session, user=session.get_one(User, world.guard.id), token=TOKEN,
                                      code=world.code("A"), nonce=nonce, position=position, now=at(2))  # fmt: skip

    before = world.counts()
    with pytest.raises(ScanRejected, match=r"you are 1\d\d m from this checkpoint \(allowed: 50 m\)"):
        attempt((31.2316, 121.4737))  # about 130 m north: the guard room, say
    assert world.counts()["patrol_scans"] == before["patrol_scans"]
    outcome = attempt((31.2305, 121.4737))
    assert outcome.scan.counted and outcome.scan.details == {"distance_m": 11}
