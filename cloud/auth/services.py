"""Users: creating and changing accounts (audited), signing in, and what an account may see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.audit.services import Actor, Change, record
from cloud.auth.models import Role, User, owner_units, user_sites
from cloud.auth.schemas import UserCreate, UserPublic, UserUpdate, check_scope
from cloud.auth.security import hash_password, verify_password
from cloud.registry.models import Site, Unit


class UserError(ValueError):
    """A change that cannot be made (unknown site, username taken); the message says which."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Reach:
    """What a user may see: every site, some sites (staff), or some units (owners)."""

    all_sites: bool
    site_ids: frozenset[int]
    unit_ids: frozenset[int]


def actor(user: User) -> Actor:
    return Actor(user.username, user.id)


def facts(user: User) -> dict[str, Any]:
    """The audited view of a user: no password hash, but when the password last changed."""
    return {
        "username": user.username, "full_name": user.full_name, "phone": user.phone, "role": user.role.value,
        "is_active": user.is_active, "all_sites": user.all_sites, "sites": [s.code for s in user.sites],
        "units": [u.code for u in user.units], "password_changed_at": user.password_changed_at,
    }  # fmt: skip


def public(session: Session, user: User) -> UserPublic:
    return UserPublic.model_validate(
        {**{c: getattr(user, c) for c in ("id", "username", "full_name", "phone", "role", "is_active", "all_sites",
                                          "created_at")},
         "sites": [s.code for s in user.sites], "unit_ids": sorted(reach(session, user).unit_ids)}
    )  # fmt: skip


def reach(session: Session, user: User) -> Reach:
    """Owners see the units they bound that still carry their phone number: when the property registers a
    new owner's number for a unit, the previous owner loses it at once."""
    if user.role is Role.OWNER:
        units = session.scalars(
            select(Unit.id)
            .join(owner_units, owner_units.c.unit_id == Unit.id)
            .where(owner_units.c.user_id == user.id, Unit.owner_phone == user.phone)
        )
        return Reach(False, frozenset(), frozenset(units))
    sites: Iterable[int] = session.scalars(select(user_sites.c.site_id).where(user_sites.c.user_id == user.id))
    return Reach(user.all_sites, frozenset(sites), frozenset())


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password; the same work is done whether or not the name exists."""
    user = session.scalar(select(User).where(User.username == username))
    if not verify_password(password, user.password_hash if user else None) or user is None or not user.is_active:
        return None
    return user


def _sites(session: Session, codes: list[str]) -> list[Site]:
    found = {s.code: s for s in session.scalars(select(Site).where(Site.code.in_(codes)))}
    missing = sorted(set(codes) - set(found))
    if missing:
        raise UserError(f"no site {', '.join(missing)}")
    return [found[c] for c in sorted(set(codes))]


def create_user(session: Session, by: Actor, data: UserCreate, now: datetime | None = None) -> User:
    now = now or datetime.now(UTC)
    if session.scalar(select(User.id).where(User.username == data.username)) is not None:
        raise UserError(f"username {data.username} is taken", 409)
    user = User(
        username=data.username, full_name=data.full_name, phone=data.phone, role=Role(data.role),
        password_hash=hash_password(data.password), password_changed_at=now, is_active=True,
        all_sites=data.all_sites, created_at=now, sites=_sites(session, data.sites), units=[],
    )  # fmt: skip
    session.add(user)
    session.flush()
    record(session, by, [Change("create", "user", user.id, user.username, None, facts(user))], now)
    return user


def update_user(session: Session, by: Actor, user: User, data: UserUpdate, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    changes = data.model_dump(exclude_unset=True)
    if user.role is Role.OWNER and "role" in changes:
        raise UserError("an owner account cannot become staff; create a staff account instead")
    role = changes.get("role", user.role)
    all_sites = changes.get("all_sites", user.all_sites)
    sites = changes.get("sites", [s.code for s in user.sites])
    try:
        check_scope(role, all_sites, sites)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    before = facts(user)
    for field in ("full_name", "phone", "is_active", "all_sites"):
        if field in changes:
            setattr(user, field, changes[field])
    if "role" in changes:
        user.role = Role(changes["role"])
    if "sites" in changes:
        user.sites = _sites(session, changes["sites"])
    if changes.get("password") is not None:
        user.password_hash = hash_password(changes["password"])
        user.password_changed_at = now
    session.flush()
    record(session, by, [Change("update", "user", user.id, user.username, before, facts(user))], now)
