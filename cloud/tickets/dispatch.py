"""Who gets a ticket: the dispatch score.

Only technicians of the ticket's site who are on duty and have the ticket's category as a skill qualify
(skill match is required: the plumber is never sent to the lift). Among them the highest score wins:

| part | points |
|---|---|
| shift | +100 on shift now (a technician off shift is chosen only when nobody qualified is on shift) |
| zone | +30 when the ticket's building is in their zones, +10 when they cover the whole site |
| location | +10 when their last known location is the ticket's building |
| load | -10 per open ticket they hold |
| rating | (average rating of the last 90 days - 3) x 5, from -10 to +10 (0 without ratings) |
| on time | +10 x share of their tickets of the last 90 days accepted within the response target (5 without history) |

Ties go to the lower technician id, so the order is stable. Every assignment stores its breakdown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, func, select
from sqlalchemy.orm import Session

from cloud.auth.models import User
from cloud.tickets.models import Rating, SlaMark, Technician, Ticket
from cloud.tickets.technicians import on_shift, open_load

SHIFT_POINTS = 100
ZONE_POINTS = 30
WHOLE_SITE_POINTS = 10
LOCATION_POINTS = 10
LOAD_POINTS = -10
RATING_POINTS = 5
ON_TIME_POINTS = 10
PERFORMANCE_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class Candidate:
    technician: Technician
    score: float
    breakdown: dict[str, Any]


def qualified(session: Session, ticket: Ticket, exclude: Iterable[int] = ()) -> list[Technician]:
    """Technicians of the site, on duty, active, with the ticket's category as a skill, not in ``exclude``."""
    excluded = set(exclude)
    rows = session.scalars(
        select(Technician)
        .join(User, User.id == Technician.user_id)
        .where(Technician.site_id == ticket.site_id, Technician.on_duty.is_(True), User.is_active.is_(True))
        .order_by(Technician.id)
    ).all()
    return [t for t in rows if ticket.category.value in t.skills and t.id not in excluded]


def _ratings(session: Session, ids: list[int], since: datetime) -> dict[int, float]:
    avg = func.avg((Rating.speed + Rating.attitude + Rating.quality) / 3.0, type_=Float)
    rows = session.execute(
        select(Ticket.assignee_id, avg)
        .join(Rating, Rating.ticket_id == Ticket.id)
        .where(Ticket.assignee_id.in_(ids), Rating.at >= since)
        .group_by(Ticket.assignee_id)
    ).all()
    return {int(t): float(a) for t, a in rows if t is not None and a is not None}


def _on_time(session: Session, ids: list[int], since: datetime) -> dict[int, float]:
    accepted = dict(
        session.execute(
            select(Ticket.assignee_id, func.count())
            .where(Ticket.assignee_id.in_(ids), Ticket.accepted_at.is_not(None), Ticket.created_at >= since)
            .group_by(Ticket.assignee_id)
        ).all()
    )
    late = dict(
        session.execute(
            select(Ticket.assignee_id, func.count(func.distinct(Ticket.id)))
            .join(SlaMark, SlaMark.ticket_id == Ticket.id)
            .where(
                Ticket.assignee_id.in_(ids),
                Ticket.accepted_at.is_not(None),
                Ticket.created_at >= since,
                SlaMark.clock == "response",
                SlaMark.mark == "breach",
            )
            .group_by(Ticket.assignee_id)
        ).all()
    )
    return {int(t): 1 - late.get(t, 0) / n for t, n in accepted.items() if t is not None and n}


def rank(session: Session, ticket: Ticket, now: datetime, exclude: Iterable[int] = ()) -> list[Candidate]:
    """Qualified technicians, best first, each with the breakdown of their score."""
    techs = qualified(session, ticket, exclude)
    if not techs:
        return []
    ids = [t.id for t in techs]
    shifts = on_shift(session, ids, now)
    loads = open_load(session, ids)
    ratings = _ratings(session, ids, now - PERFORMANCE_WINDOW)
    on_time = _on_time(session, ids, now - PERFORMANCE_WINDOW)
    out = []
    for tech in techs:
        zones = tech.zone_building_ids or []
        parts: dict[str, Any] = {
            "skill": ticket.category.value,
            "shift": SHIFT_POINTS if tech.id in shifts else 0,
            "zone": (ZONE_POINTS if ticket.building_id in zones else 0) if zones else WHOLE_SITE_POINTS,
            "location": LOCATION_POINTS
            if ticket.building_id is not None and tech.location_building_id == ticket.building_id
            else 0,
            "open_tickets": loads[tech.id],
            "load": LOAD_POINTS * loads[tech.id],
            "avg_rating": round(ratings[tech.id], 2) if tech.id in ratings else None,
            "rating": round((ratings[tech.id] - 3) * RATING_POINTS, 2) if tech.id in ratings else 0,
            "on_time_rate": round(on_time[tech.id], 3) if tech.id in on_time else None,
            "on_time": round(ON_TIME_POINTS * on_time.get(tech.id, 0.5), 2),
        }
        total = sum(parts[k] for k in ("shift", "zone", "location", "load", "rating", "on_time"))
        parts["total"] = round(total, 2)
        out.append(Candidate(tech, total, parts))
    out.sort(key=lambda c: (-c.score, c.technician.id))
    return out
