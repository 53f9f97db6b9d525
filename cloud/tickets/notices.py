"""Who is told what about a ticket, queued in the caller's transaction (``cloud.notify``): the reporting owner at
every state change, the technician when assigned or offered a ticket, staff when nobody can take it, and the
team lead (level 1) and manager (level 2) when an SLA is missed. Keys make each notice go out once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.auth.models import Role, User, user_sites
from cloud.console.i18n import Lang, translate
from cloud.notify.services import notify
from cloud.tickets.models import Technician, Ticket, TicketSiteSettings, TicketState
from cloud.tickets.sla import ClockName, Mark

LANG: Lang = "zh-CN"
"""Notifications go out in Simplified Chinese."""


def _text(key: str, **values: object) -> str:
    return translate(key, LANG).format(**values)


def _data(ticket: Ticket, **extra: object) -> dict[str, object]:
    return {"ticket_id": ticket.id, "state": ticket.state.value, **extra}


def site_staff(session: Session, site_id: int, roles: tuple[Role, ...] = (Role.ADMIN, Role.ENGINEER)) -> list[int]:
    """Active users with these roles at the site (or admins of every site)."""
    members = select(user_sites.c.user_id).where(user_sites.c.site_id == site_id)
    return list(
        session.scalars(
            select(User.id)
            .where(User.role.in_(roles), User.is_active.is_(True), User.id.in_(members) | User.all_sites.is_(True))
            .order_by(User.id)
        )
    )


def _settings(session: Session, site_id: int) -> TicketSiteSettings | None:
    return session.scalars(select(TicketSiteSettings).where(TicketSiteSettings.site_id == site_id)).first()


def _reporting_owner(session: Session, ticket: Ticket) -> User | None:
    reporter = session.get(User, ticket.reporter_id) if ticket.reporter_id is not None else None
    return reporter if reporter is not None and reporter.role is Role.OWNER else None


def state_changed(session: Session, ticket: Ticket, event_id: int, now: datetime) -> None:
    """The reporting owner hears of every state change of their request."""
    reporter = _reporting_owner(session, ticket)
    if reporter is None:
        return
    state = translate(f"ticket_state_{ticket.state.value}", LANG)
    notify(
        session,
        kind=f"ticket.{ticket.state.value}",
        user_id=reporter.id,
        site_id=ticket.site_id,
        now=now,
        title=_text("ticket_note_state", id=ticket.id, title=ticket.title, state=state),
        body=ticket.description,
        data=_data(ticket),
        dedupe_key=f"ticket:{ticket.id}:event:{event_id}",
    )


def waiting_for_owner(session: Session, ticket: Ticket, reason: str, event_id: int, now: datetime) -> None:
    """The reporting owner is asked for what the technician waits for (the SLA clocks stand still meanwhile)."""
    reporter = _reporting_owner(session, ticket)
    if reporter is None:
        return
    notify(
        session,
        kind="ticket.waiting_for_owner",
        user_id=reporter.id,
        site_id=ticket.site_id,
        now=now,
        title=_text("ticket_note_waiting", id=ticket.id, title=ticket.title, reason=reason),
        body=reason,
        data=_data(ticket),
        dedupe_key=f"ticket:{ticket.id}:event:{event_id}",
    )


def assigned(session: Session, ticket: Ticket, tech: Technician, timeout_s: int, now: datetime) -> None:
    notify(
        session,
        kind="ticket.assigned",
        user_id=tech.user_id,
        site_id=ticket.site_id,
        now=now,
        title=_text("ticket_note_assigned", id=ticket.id, title=ticket.title, minutes=max(1, timeout_s // 60)),
        body=ticket.description,
        data=_data(ticket, round=ticket.dispatch_round),
        dedupe_key=f"ticket:{ticket.id}:assigned:{ticket.dispatch_round}",
    )


def offered(session: Session, ticket: Ticket, tech: Technician, now: datetime) -> None:
    notify(
        session,
        kind="ticket.offered",
        user_id=tech.user_id,
        site_id=ticket.site_id,
        now=now,
        title=_text("ticket_note_offered", id=ticket.id, title=ticket.title),
        body=ticket.description,
        data=_data(ticket, round=ticket.dispatch_round),
        dedupe_key=f"ticket:{ticket.id}:offered:{ticket.dispatch_round}:{tech.id}",
    )


def no_technician(session: Session, ticket: Ticket, now: datetime) -> None:
    """Staff are told once per ticket and reopen cycle that dispatch found nobody qualified."""
    settings = _settings(session, ticket.site_id)
    users = [settings.team_lead_id] if settings and settings.team_lead_id else site_staff(session, ticket.site_id)
    category = translate(f"ticket_category_{ticket.category.value}", LANG)
    for user_id in users:
        notify(
            session,
            kind="ticket.no_technician",
            user_id=user_id,
            site_id=ticket.site_id,
            now=now,
            title=_text("ticket_note_no_technician", id=ticket.id, title=ticket.title, category=category),
            body=ticket.description,
            data=_data(ticket),
            dedupe_key=f"ticket:{ticket.id}:{ticket.reopen_count}:nobody:{user_id}",
        )


def sla_mark(session: Session, ticket: Ticket, clock: ClockName, mark: Mark, now: datetime) -> list[int]:
    """Warning: the technician (or, without one, the team lead); level 1: team lead; level 2: manager. A site
    without a team lead or manager set tells its admins instead. Returns who was told."""
    settings = _settings(session, ticket.site_id)
    lead = settings.team_lead_id if settings else None
    manager = settings.manager_id if settings else None
    fallback = site_staff(session, ticket.site_id, (Role.ADMIN,))
    if mark is Mark.WARNING:
        tech = session.get(Technician, ticket.assignee_id) if ticket.assignee_id else None
        users = [tech.user_id] if tech and ticket.state is not TicketState.NEW else [lead] if lead else fallback
    elif mark is Mark.BREACH:
        users = [lead] if lead else fallback
    else:
        users = [manager] if manager else fallback
    label = translate(f"ticket_sla_{clock.value}", LANG)
    for user_id in users:
        notify(
            session,
            kind=f"ticket.sla_{mark.value}",
            user_id=user_id,
            site_id=ticket.site_id,
            now=now,
            title=_text(f"ticket_note_sla_{mark.value}", id=ticket.id, title=ticket.title, clock=label),
            body=ticket.description,
            data=_data(ticket, clock=clock.value, mark=mark.value),
            dedupe_key=f"ticket:{ticket.id}:{ticket.reopen_count}:{clock.value}:{mark.value}:{user_id}",
        )
    return users
