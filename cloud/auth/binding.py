"""Owner binding: an owner proves they hold the phone number the property registered for their unit.

Start: a 6-digit code goes by SMS to the number, if any unit carries it. The answer is the same either
way, so the endpoint does not reveal which numbers are registered. Verify: the right code, before it
expires, within MAX_ATTEMPTS tries, once, creates the owner's account (or sets a new password on it) and
binds every unit registered with the number. Codes are stored hashed with the hub's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from cloud.audit.services import Actor, Change, record
from cloud.auth.models import Role, User, VerificationCode, owner_units
from cloud.auth.security import hash_password
from cloud.auth.services import facts
from cloud.auth.sms import SmsSender
from cloud.registry.models import Unit
from cloud.settings import HubSettings

CODE_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5
"""Wrong codes accepted per code; then it is dead and a new one must be requested."""
RESEND_AFTER = timedelta(seconds=60)
MAX_CODES_PER_DAY = 5
"""Codes per number per 24 hours: each one costs an SMS, and each allows MAX_ATTEMPTS guesses."""


@dataclass
class BindingError(Exception):
    """Why a step failed, for the owner; ``status`` is the HTTP status the API answers with."""

    reason: str
    status: int = 400

    def __str__(self) -> str:
        return self.reason


def _hash(settings: HubSettings, phone: str, code: str) -> str:
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def start(session: Session, settings: HubSettings, sender: SmsSender, phone: str, now: datetime) -> None:
    """Issue a code for ``phone`` (normalised) and text it if a unit is registered with the number."""
    recent = list(
        session.scalars(
            select(VerificationCode.created_at).where(
                VerificationCode.phone == phone, VerificationCode.created_at > now - timedelta(days=1)
            )
        )
    )
    if len(recent) >= MAX_CODES_PER_DAY:
        raise BindingError(f"at most {MAX_CODES_PER_DAY} codes a day for one number; try again tomorrow", 429)
    if recent and now - max(recent) < RESEND_AFTER:
        wait = RESEND_AFTER - (now - max(recent))
        raise BindingError(f"a code was just sent; ask again in {int(wait.total_seconds()) + 1} s", 429)
    session.execute(  # only the newest code is valid
        update(VerificationCode)
        .where(VerificationCode.phone == phone, VerificationCode.expires_at > now)
        .values(expires_at=now)
    )
    code = f"{secrets.randbelow(10**6):06d}"
    session.execute(
        insert(VerificationCode).values(
            phone=phone, code_hash=_hash(settings, phone, code), created_at=now, expires_at=now + CODE_TTL, attempts=0
        )
    )
    registered = session.scalar(select(func.count()).select_from(Unit).where(Unit.owner_phone == phone))
    if registered:
        minutes = int(CODE_TTL.total_seconds() // 60)
        sender.send(phone, f"【EstateHub】您的业主绑定验证码为 {code}，{minutes} 分钟内有效。如非本人操作请忽略。")


def verify(session: Session, settings: HubSettings, phone: str, code: str, password: str, now: datetime) -> User:
    """The owner's account, bound to every unit registered with ``phone``.

    On a wrong code the attempt is counted in the session before BindingError is raised: the caller must
    commit it (the API does), or attempts would be unlimited.
    """
    row = session.scalar(
        select(VerificationCode).where(VerificationCode.phone == phone).order_by(VerificationCode.id.desc()).limit(1)
    )
    if row is None:
        raise BindingError("no code was requested for this number")
    if row.used_at is not None:
        raise BindingError("this code was already used; ask for a new one")
    if row.attempts >= MAX_ATTEMPTS:
        raise BindingError("too many wrong codes; ask for a new one", 429)
    if now >= row.expires_at:
        raise BindingError("the code has expired; ask for a new one")
    if not hmac.compare_digest(row.code_hash, _hash(settings, phone, code)):
        row.attempts += 1
        left = MAX_ATTEMPTS - row.attempts
        raise BindingError(f"wrong code ({left} tries left)" if left else "wrong code; ask for a new one")
    row.used_at = now
    units = list(session.scalars(select(Unit).where(Unit.owner_phone == phone).order_by(Unit.id)))
    if not units:
        raise BindingError("no unit is registered with this number; please contact the property office")
    user = session.scalar(select(User).where(User.username == phone))
    if user is not None and (user.role is not Role.OWNER or not user.is_active):
        raise BindingError("this number cannot be used to sign in here; please contact the property office", 403)
    if user is None:
        user = User(
            username=phone, full_name=units[0].owner_name or "", phone=phone, role=Role.OWNER,
            password_hash=hash_password(password), password_changed_at=now, is_active=True, all_sites=False,
            created_at=now, sites=[], units=[],
        )  # fmt: skip
        session.add(user)
        session.flush()
        before = None
    else:
        before = facts(user)
        user.password_hash = hash_password(password)
        user.password_changed_at = now
    bound: set[int] = set(session.scalars(select(owner_units.c.unit_id).where(owner_units.c.user_id == user.id)))
    new = [u.id for u in units if u.id not in bound]
    if new:
        session.execute(insert(owner_units), [{"user_id": user.id, "unit_id": uid} for uid in new])
    session.flush()
    session.refresh(user, ["units"])
    change = Change("create" if before is None else "update", "user", user.id, user.username, before, facts(user))
    record(session, Actor(f"owner-binding:{phone}", user.id), [change], now)
    return user
