"""Accepting a scan: check the code and its proof of presence, then count it in a round or flag it.

A scan is rejected (``ScanRejected``, nothing stored) when it proves nothing: a forged or altered code, a
code of another site, a code whose key was revoked, a challenge that is unknown, expired, already used or
issued to another guard's session (a replay), or a phone outside the checkpoint's geofence.

Otherwise it is stored with its trust level (strong: edge scanner reading the guard's badge; normal:
online phone scan with a challenge; low: offline phone scan with the phone's own time) and either counted
for the round checkpoint whose window covers its time, or flagged: outside any window, by a guard not
assigned to the round, or a repeat of a checkpoint already counted in the round. Flagged scans are kept
and shown, never counted.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.auth.models import User
from cloud.patrol.keys import InvalidCode, Verified, verify
from cloud.patrol.models import (
    Checkpoint,
    PatrolChallenge,
    PatrolRound,
    PatrolScan,
    RoundCheckpoint,
    ScanFlag,
    ScanSource,
    Trust,
)
from cloud.patrol.scoring import score

CHALLENGE_TTL = timedelta(seconds=90)
CLOCK_SKEW = timedelta(minutes=2)
"""How far ahead of the hub an offline scan's phone time may be before it is refused."""


class ScanRejected(Exception):
    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Outcome:
    scan: PatrolScan
    slot: RoundCheckpoint | None
    """The round checkpoint the scan counted for (None when flagged)."""


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_challenge(
    session: Session, user: User, site_id: int, token: str, now: datetime | None = None
) -> PatrolChallenge:
    """A nonce for one online scan, valid for ``CHALLENGE_TTL``, bound to this guard and session token."""
    now = now or datetime.now(UTC)
    challenge = PatrolChallenge(
        site_id=site_id, nonce=secrets.token_urlsafe(24), user_id=user.id, session_hash=session_hash(token),
        issued_at=now, expires_at=now + CHALLENGE_TTL,
    )  # fmt: skip
    session.add(challenge)
    session.flush()
    return challenge


def _verified(session: Session, code: str, kind: str, site_id: int) -> Verified:
    try:
        found = verify(session, code)
    except InvalidCode as exc:
        raise ScanRejected(exc.reason) from None
    if found.kind != kind:
        raise ScanRejected("this is a guard badge, not a checkpoint code" if kind == "c" else "this is not a badge")
    if found.site_id != site_id:
        raise ScanRejected("this code belongs to another site")
    return found


def _checkpoint(session: Session, site_id: int, checkpoint_id: int) -> Checkpoint:
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or checkpoint.site_id != site_id:
        raise ScanRejected("this checkpoint no longer exists", 404)
    return checkpoint


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), good to a metre at checkpoint scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def _check_geofence(checkpoint: Checkpoint, position: tuple[float, float] | None) -> dict[str, Any]:
    if checkpoint.geofence_m is None or checkpoint.lat is None or checkpoint.lon is None:
        return {}
    if position is None:
        raise ScanRejected("this checkpoint needs your phone's location: allow location access and scan again")
    distance = _distance_m(checkpoint.lat, checkpoint.lon, *position)
    if distance > checkpoint.geofence_m:
        raise ScanRejected(f"you are {distance:.0f} m from this checkpoint (allowed: {checkpoint.geofence_m} m)")
    return {"distance_m": round(distance)}


def accept_online_scan(
    session: Session, *, user: User, token: str, code: str, nonce: str,
    position: tuple[float, float] | None = None, now: datetime | None = None,
) -> Outcome:  # fmt: skip
    """A phone scan made with signal: the challenge must be this guard's, this session's, fresh and unused."""
    now = now or datetime.now(UTC)
    challenge = session.scalars(select(PatrolChallenge).where(PatrolChallenge.nonce == nonce).with_for_update()).first()
    if challenge is None:
        raise ScanRejected("unknown challenge: reload the page and scan again")
    if challenge.user_id != user.id or challenge.session_hash != session_hash(token):
        raise ScanRejected("this challenge was issued to another session: replayed scans do not count", 409)
    if challenge.used_at is not None:
        raise ScanRejected("this challenge was used already: replayed scans do not count", 409)
    if now > challenge.expires_at:
        raise ScanRejected("the challenge expired: scan again")
    found = _verified(session, code, "c", challenge.site_id)
    checkpoint = _checkpoint(session, challenge.site_id, found.subject_id)
    details = _check_geofence(checkpoint, position)
    challenge.used_at = now
    return record(session, checkpoint, user.id, now, now, Trust.NORMAL, ScanSource.ONLINE,
                  challenge_id=challenge.id, details=details)  # fmt: skip


def accept_offline_scan(
    session: Session, *, user: User, site_id: int, code: str, scanned_at: datetime, client_ref: str,
    now: datetime | None = None,
) -> Outcome:  # fmt: skip
    """A scan the page queued without signal, synced now with the phone's time of the scan. Syncing the same
    ``client_ref`` again returns the stored scan."""
    now = now or datetime.now(UTC)
    existing = session.scalars(
        select(PatrolScan).where(PatrolScan.guard_id == user.id, PatrolScan.client_ref == client_ref)
    ).first()
    if existing is not None:
        slot = session.scalars(select(RoundCheckpoint).where(RoundCheckpoint.scan_id == existing.id)).first()
        return Outcome(existing, slot)
    if scanned_at > now + CLOCK_SKEW:
        raise ScanRejected(f"the scan's time {scanned_at.isoformat()} is in the future: check the phone's clock")
    found = _verified(session, code, "c", site_id)
    checkpoint = _checkpoint(session, site_id, found.subject_id)
    return record(session, checkpoint, user.id, scanned_at, now, Trust.LOW, ScanSource.OFFLINE, client_ref=client_ref)


def accept_badge_scan(
    session: Session, *, site_id: int, checkpoint_code: str, badge: str, scanned_at: datetime, event_id: int,
    now: datetime | None = None,
) -> Outcome:  # fmt: skip
    """A guard's badge read by the fixed scanner at a checkpoint (an edge ``patrol_scan`` event)."""
    found = _verified(session, badge, "b", site_id)
    checkpoint = session.scalars(
        select(Checkpoint).where(Checkpoint.site_id == site_id, Checkpoint.code == checkpoint_code)
    ).first()
    if checkpoint is None:
        raise ScanRejected(f"no checkpoint {checkpoint_code!r} at this site: check the edge's scanner config")
    guard = session.get(User, found.subject_id)
    if guard is None or not guard.is_active:
        raise ScanRejected("the badge's guard account is disabled or gone")
    return record(session, checkpoint, guard.id, scanned_at, now or datetime.now(UTC), Trust.STRONG, ScanSource.EDGE,
                  event_id=event_id)  # fmt: skip


def rescore(slots: list[RoundCheckpoint], ordered: bool) -> None:
    """Score every scanned checkpoint of a round again: a late-synced offline scan can put another
    checkpoint out of order (or back in order)."""
    for slot in slots:
        if slot.scanned_at is not None:
            slot.result = score(slot, slot.scanned_at, ordered, [o for o in slots if o is not slot])


def record(
    session: Session, checkpoint: Checkpoint, guard_id: int, scanned_at: datetime, received_at: datetime,
    trust: Trust, source: ScanSource, **extra: Any,
) -> Outcome:  # fmt: skip
    """Store the scan, counted for the guard's round whose window covers ``scanned_at``, or flagged.

    The candidate rounds are locked (FOR UPDATE) so two scans of one round at once are scored one after the
    other, and the first one counts."""
    rounds = session.scalars(
        select(PatrolRound)
        .join(RoundCheckpoint, RoundCheckpoint.round_id == PatrolRound.id)
        .where(
            RoundCheckpoint.checkpoint_id == checkpoint.id,
            RoundCheckpoint.opens_at <= scanned_at,
            RoundCheckpoint.closes_at >= scanned_at,
        )
        .order_by(PatrolRound.starts_at, PatrolRound.id)
        .with_for_update(of=PatrolRound)
    ).all()
    mine = [r for r in rounds if guard_id in r.assignees]
    scan = PatrolScan(
        site_id=checkpoint.site_id, checkpoint_id=checkpoint.id, guard_id=guard_id, scanned_at=scanned_at,
        received_at=received_at, trust=trust, source=source, counted=False, **extra,
    )  # fmt: skip
    target: tuple[PatrolRound, RoundCheckpoint, list[RoundCheckpoint]] | None = None
    for candidate in mine:
        slots = list(session.scalars(select(RoundCheckpoint).where(RoundCheckpoint.round_id == candidate.id)).all())
        slot = next(s for s in slots if s.checkpoint_id == checkpoint.id)
        if slot.scan_id is None:
            target = (candidate, slot, slots)
            break
    if target is None:
        scan.flag = ScanFlag.REPEAT if mine else ScanFlag.NOT_ASSIGNED if rounds else ScanFlag.OUTSIDE_WINDOW
        scan.round_id = (mine or rounds)[0].id if rounds else None
        session.add(scan)
        session.flush()
        return Outcome(scan, None)
    round_, slot, slots = target
    scan.round_id, scan.counted = round_.id, True
    session.add(scan)
    session.flush()
    slot.scan_id, slot.scanned_at = scan.id, scanned_at
    if round_.guard_id is None:
        round_.guard_id = guard_id
    rescore(slots, round_.ordered)
    session.flush()
    return Outcome(scan, slot)
