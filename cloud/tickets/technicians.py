"""Technicians as dispatch sees them: skills, zones (buildings), the shift calendar, on/off duty, open load and
last known location. A technician is a user with the technician (or engineer) role and a profile per site."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.auth.models import Role, User, user_sites
from cloud.registry.models import Building
from cloud.tickets.models import OPEN_STATES, Category, Technician, TechnicianShift, Ticket
from cloud.tickets.states import TicketError

TECHNICIAN_ROLES = (Role.TECHNICIAN, Role.ENGINEER)


def _check_buildings(session: Session, site_id: int, building_ids: Iterable[int]) -> list[int]:
    wanted = sorted(set(building_ids))
    found = set(session.scalars(select(Building.id).where(Building.id.in_(wanted), Building.site_id == site_id)))
    if missing := [b for b in wanted if b not in found]:
        raise TicketError(f"buildings {missing} are not in site {site_id}", status=422)
    return wanted


def upsert_technician(
    session: Session,
    user: User,
    site_id: int,
    *,
    skills: Sequence[Category],
    zone_building_ids: Sequence[int] = (),
    on_duty: bool = True,
) -> Technician:
    """Create or update the user's profile at a site; the user must be a technician or engineer of that site."""
    if user.role not in TECHNICIAN_ROLES:
        raise TicketError(f"user {user.username} is {user.role.value}; only technicians and engineers take tickets")
    member = session.scalar(
        select(func.count())
        .select_from(user_sites)
        .where(user_sites.c.user_id == user.id, user_sites.c.site_id == site_id)
    )
    if not member:
        raise TicketError(f"user {user.username} is not staff of site {site_id}; add the site to the user first")
    if not skills:
        raise TicketError("a technician needs at least one skill", status=422)
    zones = _check_buildings(session, site_id, zone_building_ids)
    tech = session.scalars(
        select(Technician).where(Technician.user_id == user.id, Technician.site_id == site_id)
    ).first()
    if tech is None:
        tech = Technician(user_id=user.id, site_id=site_id)
        session.add(tech)
    tech.skills = sorted({Category(s).value for s in skills})
    tech.zone_building_ids = zones
    tech.on_duty = on_duty
    session.flush()
    return tech


def add_shift(session: Session, tech: Technician, starts_at: datetime, ends_at: datetime) -> TechnicianShift:
    if ends_at <= starts_at:
        raise TicketError(f"a shift must end after it starts ({starts_at.isoformat()} .. {ends_at.isoformat()})", 422)
    shift = TechnicianShift(technician_id=tech.id, starts_at=starts_at, ends_at=ends_at)
    session.add(shift)
    session.flush()
    return shift


def set_location(session: Session, tech: Technician, building_id: int, now: datetime) -> None:
    """Last known location: the building where they last checked in (arrival) or reported from."""
    _check_buildings(session, tech.site_id, [building_id])
    tech.location_building_id = building_id
    tech.location_at = now


def on_shift(session: Session, technician_ids: Iterable[int], now: datetime) -> set[int]:
    ids = list(technician_ids)
    return set(
        session.scalars(
            select(TechnicianShift.technician_id).where(
                TechnicianShift.technician_id.in_(ids), TechnicianShift.starts_at <= now, TechnicianShift.ends_at > now
            )
        )
    )


def open_load(session: Session, technician_ids: Iterable[int]) -> dict[int, int]:
    """Open tickets (assigned, accepted, in progress, to verify) per technician."""
    ids = list(technician_ids)
    rows = session.execute(
        select(Ticket.assignee_id, func.count())
        .where(Ticket.assignee_id.in_(ids), Ticket.state.in_(OPEN_STATES))
        .group_by(Ticket.assignee_id)
    ).all()
    loads = {tech_id: 0 for tech_id in ids}
    loads.update({tech_id: n for tech_id, n in rows if tech_id is not None})
    return loads


def technician_of(session: Session, user: User, site_id: int) -> Technician | None:
    return session.scalars(
        select(Technician).where(Technician.user_id == user.id, Technician.site_id == site_id)
    ).first()
