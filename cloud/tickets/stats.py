"""Ticket statistics for the staff console: completion rate, response and resolution times, per technician and
per category, and repeat faults per asset.

Over tickets opened in [since, until]. Response time is opening to acceptance and resolution time opening to
completion, in wall-clock seconds (the SLA clocks, which skip pauses and non-business hours, are per ticket);
cancelled tickets count in the total but not as completed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from statistics import mean

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from cloud.tickets.models import Rating, SlaMark, Ticket, TicketState

REPEAT_MIN = 2
"""An asset with this many tickets in the window has a repeat fault."""
FINISHED = (TicketState.DONE, TicketState.FOLLOW_UP, TicketState.CLOSED)


@dataclass
class Group:
    total: int = 0
    completed: int = 0
    response_s: list[float] = field(default_factory=list)
    resolution_s: list[float] = field(default_factory=list)
    breached: int = 0
    ratings: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        return {
            "total": self.total,
            "completed": self.completed,
            "completion_rate": round(self.completed / self.total, 3) if self.total else None,
            "avg_response_s": round(mean(self.response_s)) if self.response_s else None,
            "avg_resolution_s": round(mean(self.resolution_s)) if self.resolution_s else None,
            "sla_breached": self.breached,
            "avg_rating": round(mean(self.ratings), 2) if self.ratings else None,
        }


def ticket_stats(
    session: Session, scope_condition: ColumnElement[bool], since: datetime, until: datetime
) -> dict[str, object]:
    tickets = session.scalars(
        select(Ticket).where(scope_condition, Ticket.created_at >= since, Ticket.created_at <= until)
    ).all()
    ids = [t.id for t in tickets]
    breached = set(
        session.scalars(select(SlaMark.ticket_id).where(SlaMark.ticket_id.in_(ids), SlaMark.mark == "breach"))
    )
    ratings = dict(
        session.execute(
            select(Rating.ticket_id, (Rating.speed + Rating.attitude + Rating.quality) / 3.0).where(
                Rating.ticket_id.in_(ids)
            )
        ).all()
    )
    overall = Group()
    per_tech: defaultdict[int, Group] = defaultdict(Group)
    per_category: defaultdict[str, Group] = defaultdict(Group)
    for t in tickets:
        groups: Iterable[Group] = (overall, per_category[t.category.value]) + (
            (per_tech[t.assignee_id],) if t.assignee_id is not None else ()
        )
        for g in groups:
            g.total += 1
            g.completed += t.state in FINISHED
            g.breached += t.id in breached
            if t.accepted_at is not None:
                g.response_s.append((t.accepted_at - t.created_at).total_seconds())
            if t.completed_at is not None:
                g.resolution_s.append((t.completed_at - t.created_at).total_seconds())
            if t.id in ratings:
                g.ratings.append(float(ratings[t.id]))
    return {
        "since": since,
        "until": until,
        **overall.summary(),
        "per_technician": [{"technician_id": k, **g.summary()} for k, g in sorted(per_tech.items())],
        "per_category": [{"category": k, **g.summary()} for k, g in sorted(per_category.items())],
        "repeat_faults": repeat_faults(session, scope_condition, since, until),
    }


def repeat_faults(
    session: Session, scope_condition: ColumnElement[bool], since: datetime, until: datetime
) -> list[dict[str, object]]:
    """Equipment and meters with at least ``REPEAT_MIN`` tickets in the window, most first."""
    found: list[tuple[str, int, int]] = []
    for kind, column in (("equipment", Ticket.equipment_id), ("meter", Ticket.meter_id)):
        rows = session.execute(
            select(column, func.count())
            .where(scope_condition, column.is_not(None), Ticket.created_at >= since, Ticket.created_at <= until)
            .group_by(column)
            .having(func.count() >= REPEAT_MIN)
        ).all()
        found += [(kind, asset_id, n) for asset_id, n in rows if asset_id is not None]
    found.sort(key=lambda r: (-r[2], r[0], r[1]))
    return [{"asset": kind, "id": asset_id, "tickets": n} for kind, asset_id, n in found]
