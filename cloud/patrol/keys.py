"""Per-site signing keys and the signed codes printed on checkpoints and guard badges.

A code is ``EHP1.<kind>.<site id>.<key no>.<subject id>.<signature>``: ``c`` for a checkpoint, ``b`` for a
guard's badge, and 96 bits of HMAC-SHA256 in base64url. About 35 characters: a small QR code (version 3)
and one line from a serial scanner. The signature proves the hub issued the code for that site; a copied
code from another site names that site and fails there, and revoking a key voids every code it signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.patrol.models import PatrolKey
from cloud.registry.models import Site

PREFIX = "EHP1"
SIGNATURE_BYTES = 12
Kind = Literal["c", "b"]
KINDS: tuple[Kind, ...] = ("c", "b")


class InvalidCode(Exception):
    """A code the hub did not issue, or no longer honours; ``reason`` says which, for the guard."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    kind: Kind
    site_id: int
    subject_id: int
    """Checkpoint id (kind c) or user id (kind b)."""
    key_id: int


def rotate_key(session: Session, site_id: int, now: datetime | None = None) -> PatrolKey:
    """A new signing key for the site; older keys keep verifying until revoked. The site row is locked so
    two rotations at once get consecutive numbers rather than a conflict."""
    session.scalars(select(Site).where(Site.id == site_id).with_for_update()).one()
    last = session.scalar(select(func.max(PatrolKey.kid)).where(PatrolKey.site_id == site_id)) or 0
    key = PatrolKey(site_id=site_id, kid=last + 1, secret=secrets.token_hex(32), created_at=now or datetime.now(UTC))
    session.add(key)
    session.flush()
    return key


def revoke_key(session: Session, key: PatrolKey, now: datetime | None = None) -> None:
    """Void every code the key signed. Codes must then be reprinted with the site's current key."""
    if key.revoked_at is None:
        key.revoked_at = now or datetime.now(UTC)
        session.flush()


def signing_key(session: Session, site_id: int) -> PatrolKey:
    """The site's newest unrevoked key, made on first use."""
    key = session.scalars(
        select(PatrolKey)
        .where(PatrolKey.site_id == site_id, PatrolKey.revoked_at.is_(None))
        .order_by(PatrolKey.kid.desc())
        .limit(1)
    ).first()
    return key if key is not None else rotate_key(session, site_id)


def _signature(secret: str, body: str) -> str:
    mac = hmac.new(bytes.fromhex(secret), body.encode("ascii"), hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def sign(key: PatrolKey, kind: Kind, subject_id: int) -> str:
    body = f"{PREFIX}.{kind}.{key.site_id}.{key.kid}.{subject_id}"
    return f"{body}.{_signature(key.secret, body)}"


def checkpoint_code(session: Session, site_id: int, checkpoint_id: int) -> str:
    return sign(signing_key(session, site_id), "c", checkpoint_id)


def badge_code(session: Session, site_id: int, user_id: int) -> str:
    return sign(signing_key(session, site_id), "b", user_id)


def verify(session: Session, code: str) -> Verified:
    """The code's meaning if the hub signed it with a key that is not revoked; InvalidCode otherwise."""
    parts = code.strip().split(".")
    if len(parts) != 6 or parts[0] != PREFIX:
        raise InvalidCode("not an EstateHub patrol code")
    _, kind, site, kid, subject, signature = parts
    if kind not in KINDS or not (site.isdigit() and kid.isdigit() and subject.isdigit()):
        raise InvalidCode("not an EstateHub patrol code")
    key = session.scalars(select(PatrolKey).where(PatrolKey.site_id == int(site), PatrolKey.kid == int(kid))).first()
    if key is None:
        raise InvalidCode("the code was signed with a key this hub does not have")
    if not hmac.compare_digest(_signature(key.secret, ".".join(parts[:5])), signature):
        raise InvalidCode("the code's signature is wrong: it was not issued by this hub or was altered")
    if key.revoked_at is not None:
        raise InvalidCode("the code's key was revoked: reprint this code")
    return Verified(kind=kind, site_id=int(site), subject_id=int(subject), key_id=key.id)  # type: ignore[arg-type]
