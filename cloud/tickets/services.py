"""What can be done with a ticket: open it (from an alarm, an owner, staff, a patrol or a maintenance check),
dispatch, accept, grab, arrive, start, complete, follow up, close, reopen, cancel, pause for the owner, comment,
add materials and labour, rate. Everything runs in the caller's transaction.

Each change locks the ticket row (``SELECT ... FOR UPDATE`` on PostgreSQL) and goes through the state machine
(``cloud.tickets.states``); each is written to the ticket's history with time and actor, and the reporting owner
is told (``cloud.tickets.notices``). Who may act is checked here, so the API, the pages and other domains share
one set of rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.alarms.models import Alarm, RuleKind, Severity
from cloud.api.scope import Scope
from cloud.audit.services import Actor, Change, record
from cloud.auth.models import Role, User
from cloud.auth.services import reach
from cloud.billing.models import EntryKind, EntryState, LedgerEntry
from cloud.billing.rules import approvals_required
from cloud.registry.models import Building, Equipment, Meter, MeterKind, Unit
from cloud.tickets import notices
from cloud.tickets.attachments import AttachmentStore
from cloud.tickets.dispatch import rank
from cloud.tickets.models import (
    OPEN_STATES,
    Assignment,
    AssignmentMode,
    AssignmentState,
    Attachment,
    Category,
    Comment,
    GrabOffer,
    ItemKind,
    Priority,
    Rating,
    SlaMark,
    Source,
    Technician,
    Ticket,
    TicketEvent,
    TicketPause,
    TicketSiteSettings,
    TicketState,
    WorkItem,
)
from cloud.tickets.sla import pending_marks, site_hours, targets_for
from cloud.tickets.states import Action, InvalidTransition, TicketError, target
from cloud.tickets.technicians import technician_of

DISPATCH = Actor("dispatch")
TIMERS = Actor("timers")
ALARMS = Actor("alarms")
STAFF_ACTORS = (Role.ADMIN, Role.ENGINEER)
"""Staff who run the ticket board: dispatch by hand, follow up, close, cancel, reopen."""
DEFAULT_ACCEPT_TIMEOUT_S = 600
REDISPATCH_RETRY = timedelta(minutes=5)
"""How soon dispatch tries again when nobody qualified was available."""
MAX_CHARGE_FEN = 1_000_000_00
"""One million yuan: a larger repair charge is a typing error."""

EQUIPMENT_CATEGORY: dict[str, Category] = {
    "pump": Category.PLUMBING,
    "tank": Category.PLUMBING,
    "water": Category.PLUMBING,
    "valve": Category.PLUMBING,
    "lift": Category.LIFT,
    "elevator": Category.LIFT,
    "escalator": Category.LIFT,
    "switchroom": Category.ELECTRICAL,
    "transformer": Category.ELECTRICAL,
    "generator": Category.ELECTRICAL,
    "lighting": Category.ELECTRICAL,
    "charger": Category.ELECTRICAL,
    "hvac": Category.HVAC,
    "chiller": Category.HVAC,
    "ahu": Category.HVAC,
    "fan": Category.HVAC,
    "boiler": Category.HVAC,
    "fire": Category.FIRE,
    "sprinkler": Category.FIRE,
    "hydrant": Category.FIRE,
    "smoke": Category.FIRE,
}
"""Equipment type -> the skill its faults need (anything else: general)."""
SEVERITY_PRIORITY = {
    Severity.CRITICAL: Priority.URGENT,
    Severity.WARNING: Priority.HIGH,
    Severity.INFO: Priority.NORMAL,
}


# --- reading and locking ---


def visible(scope: Scope, user: User) -> ColumnElement[bool]:
    """Tickets a user may see: staff those of their sites; owners only the requests they made for their units."""
    if scope.owner:
        return and_(Ticket.reporter_id == user.id, Ticket.unit_id.in_(scope.unit_ids))
    return scope.where(Ticket)


def get_visible(session: Session, scope: Scope, user: User, ticket_id: int, *, lock: bool = False) -> Ticket:
    """The ticket if the user may see it (locked for update if asked); 404 otherwise, missing or not theirs."""
    stmt = select(Ticket).where(Ticket.id == ticket_id, visible(scope, user))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    ticket = session.scalars(stmt).first()
    if ticket is None:
        raise TicketError(f"ticket {ticket_id} not found", status=404)
    return ticket


def lock_ticket(session: Session, ticket_id: int) -> Ticket:
    """The ticket, row-locked until the transaction ends and read afresh under the lock."""
    stmt = select(Ticket).where(Ticket.id == ticket_id).with_for_update().execution_options(populate_existing=True)
    ticket = session.scalars(stmt).first()
    if ticket is None:
        raise TicketError(f"ticket {ticket_id} not found", status=404)
    return ticket


def site_settings(session: Session, site_id: int) -> TicketSiteSettings | None:
    return session.scalars(select(TicketSiteSettings).where(TicketSiteSettings.site_id == site_id)).first()


def _actor(user: User) -> Actor:
    return Actor(user.username, user.id)


# --- history, transitions, SLA schedule ---


def record_event(
    session: Session,
    ticket: Ticket,
    actor: Actor,
    action: str,
    now: datetime,
    *,
    from_state: TicketState | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> TicketEvent:
    event = TicketEvent(
        ticket_id=ticket.id,
        at=now,
        actor_id=actor.user_id,
        actor=actor.name,
        action=action,
        from_state=from_state.value if from_state else None,
        to_state=ticket.state.value,
        note=note,
        data=data or {},
    )
    session.add(event)
    session.flush()
    return event


def _move(
    session: Session,
    ticket: Ticket,
    action: Action,
    actor: Actor,
    now: datetime,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> TicketEvent:
    """Apply one transition: state, history, the owner's notice, the SLA schedule."""
    before = ticket.state
    ticket.state = target(action, before, ticket.id)
    event = record_event(session, ticket, actor, action.value, now, from_state=before, note=note, data=data)
    notices.state_changed(session, ticket, event.id, now)
    reschedule_sla(session, ticket, now)
    return event


def pauses_of(session: Session, ticket: Ticket) -> list[TicketPause]:
    return list(session.scalars(select(TicketPause).where(TicketPause.ticket_id == ticket.id)))


def marks_done(session: Session, ticket: Ticket) -> set[tuple[str, str]]:
    rows = session.execute(
        select(SlaMark.clock, SlaMark.mark).where(SlaMark.ticket_id == ticket.id, SlaMark.cycle == ticket.reopen_count)
    ).all()
    return {(c, m) for c, m in rows}


def reschedule_sla(session: Session, ticket: Ticket, now: datetime) -> None:
    """When the timer worker should next look at the ticket's clocks (None: they stand still or stopped)."""
    if ticket.state not in OPEN_STATES:
        ticket.next_sla_check_at = None
        return
    due, next_at = pending_marks(
        ticket, pauses_of(session, ticket), site_hours(session, ticket.site_id), now, marks_done(session, ticket)
    )
    ticket.next_sla_check_at = now if due else next_at


# --- opening ---


def _check_in_site(session: Session, model: type[Any], row_id: int | None, site_id: int, label: str) -> Any:
    if row_id is None:
        return None
    row = session.get(model, row_id)
    if row is None or row.site_id != site_id:
        raise TicketError(f"{label} {row_id} is not in site {site_id}", status=422)
    return row


def open_ticket(
    session: Session,
    *,
    site_id: int,
    source: Source,
    category: Category,
    priority: Priority,
    title: str,
    actor: Actor,
    now: datetime,
    description: str = "",
    reporter_id: int | None = None,
    unit_id: int | None = None,
    building_id: int | None = None,
    equipment_id: int | None = None,
    meter_id: int | None = None,
    alarm_id: int | None = None,
    dedupe_key: str | None = None,
    preferred_from: datetime | None = None,
    preferred_to: datetime | None = None,
) -> Ticket:
    """Open a ticket and dispatch it at once. With ``dedupe_key``, a second call (or a concurrent one from another
    replica) returns the ticket the first opened."""
    title = title.strip()
    if not title or len(title) > 200:
        raise TicketError("a ticket needs a title of 1 to 200 characters", status=422)
    if preferred_from and preferred_to and preferred_to <= preferred_from:
        raise TicketError("the preferred time must end after it starts", status=422)
    if dedupe_key is not None and (existing := _by_key(session, dedupe_key)) is not None:
        return existing
    unit = _check_in_site(session, Unit, unit_id, site_id, "unit")
    _check_in_site(session, Building, building_id, site_id, "building")
    _check_in_site(session, Equipment, equipment_id, site_id, "equipment")
    meter = _check_in_site(session, Meter, meter_id, site_id, "meter")
    if building_id is None and unit is not None:
        building_id = unit.building_id
    if building_id is None and meter is not None and meter.unit_id is not None:
        building_id = session.scalar(select(Unit.building_id).where(Unit.id == meter.unit_id))
    targets = targets_for(session, site_id, category, priority)
    ticket = Ticket(
        site_id=site_id,
        building_id=building_id,
        unit_id=unit_id,
        equipment_id=equipment_id,
        meter_id=meter_id,
        alarm_id=alarm_id,
        source=source,
        dedupe_key=dedupe_key,
        category=category,
        priority=priority,
        title=title,
        description=description.strip(),
        preferred_from=preferred_from,
        preferred_to=preferred_to,
        reporter_id=reporter_id,
        state=TicketState.NEW,
        dispatch_round=0,
        created_at=now,
        sla_started_at=now,
        response_target_s=targets.response_s,
        resolution_target_s=targets.resolution_s,
        warn_percent=targets.warn_percent,
        level2_percent=targets.level2_percent,
        business_hours=targets.business_hours,
        escalation_level=0,
        reopen_count=0,
        charge_fen=0,
    )
    try:
        with session.begin_nested():
            session.add(ticket)
            session.flush()
    except IntegrityError:
        if dedupe_key is not None and (existing := _by_key(session, dedupe_key)) is not None:
            return existing
        raise
    event = record_event(session, ticket, actor, "open", now, data={"source": source.value})
    notices.state_changed(session, ticket, event.id, now)
    reschedule_sla(session, ticket, now)
    dispatch_ticket(session, ticket, now)
    return ticket


def _by_key(session: Session, dedupe_key: str) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.dedupe_key == dedupe_key)).first()


def alarm_category(session: Session, alarm: Alarm) -> Category:
    """The skill an alarm's fault needs, from the equipment type or the meter kind."""
    if alarm.equipment_id is not None:
        equipment = session.get(Equipment, alarm.equipment_id)
        if equipment is not None:
            return EQUIPMENT_CATEGORY.get(equipment.type.lower(), Category.GENERAL)
    if alarm.meter_id is not None:
        meter = session.get(Meter, alarm.meter_id)
        if meter is not None:
            return Category.PLUMBING if meter.kind is MeterKind.WATER else Category.ELECTRICAL
    if alarm.kind is RuleKind.LEAK:
        return Category.PLUMBING
    if alarm.kind is RuleKind.EDGE_OFFLINE:
        return Category.ELECTRICAL
    return Category.GENERAL


def open_from_alarm(session: Session, alarm: Alarm, now: datetime) -> Ticket:
    """The ticket of an alarm's fault episode, opened and dispatched on the first call; later calls (a replayed
    event, another replica) return the same ticket. When the episode comes back after clearing, its ticket goes
    back to work: to the technician who accepted it, else to dispatch; a finished ticket is reopened."""
    found = session.scalars(select(Ticket.id).where(Ticket.dedupe_key == f"alarm:{alarm.id}")).first()
    if found is None:
        return open_ticket(
            session,
            site_id=alarm.site_id,
            source=Source.ALARM,
            category=alarm_category(session, alarm),
            priority=SEVERITY_PRIORITY.get(alarm.severity, Priority.NORMAL),
            title=alarm.title[:200],
            description=alarm.message,
            equipment_id=alarm.equipment_id,
            meter_id=alarm.meter_id,
            alarm_id=alarm.id,
            dedupe_key=f"alarm:{alarm.id}",
            actor=ALARMS,
            now=now,
        )
    ticket = lock_ticket(session, found)
    if ticket.fault_cleared_at is None:
        return ticket
    ticket.fault_cleared_at = None
    data = {"alarm_id": alarm.id}
    if ticket.state is TicketState.VERIFY and ticket.accepted_at is not None:
        _move(session, ticket, Action.START, ALARMS, now, note="告警再次出现", data=data)
    elif ticket.state is TicketState.VERIFY:
        ticket.assignee_id = None
        _move(session, ticket, Action.REDISPATCH, ALARMS, now, note="告警再次出现", data=data)
        dispatch_ticket(session, ticket, now)
    elif ticket.state in (TicketState.DONE, TicketState.FOLLOW_UP, TicketState.CLOSED):
        _restart(ticket, now)
        _move(session, ticket, Action.REOPEN, ALARMS, now, note="告警再次出现", data=data)
        dispatch_ticket(session, ticket, now)
    else:
        record_event(session, ticket, ALARMS, "fault_returned", now, from_state=ticket.state, data=data)
    return ticket


def alarm_cleared(session: Session, alarm: Alarm, now: datetime) -> Ticket | None:
    """The alarm's fault cleared: an open ticket moves to verify (someone confirms and completes it, or starts
    work if the fault is not really gone). A ticket already done or cancelled only records when it cleared."""
    found = session.scalars(select(Ticket.id).where(Ticket.alarm_id == alarm.id)).first()
    if found is None:
        return None
    ticket = lock_ticket(session, found)
    if ticket.fault_cleared_at is not None and ticket.state is TicketState.VERIFY:
        return ticket
    ticket.fault_cleared_at = now
    if ticket.state in (TicketState.NEW, TicketState.ASSIGNED, TicketState.ACCEPTED, TicketState.IN_PROGRESS):
        _withdraw_offers(session, ticket, now)
        _move(session, ticket, Action.FAULT_CLEARED, ALARMS, now, data={"alarm_id": alarm.id})
    else:
        record_event(session, ticket, ALARMS, "fault_cleared", now, data={"alarm_id": alarm.id})
    return ticket


def open_repair_request(
    session: Session,
    owner: User,
    *,
    unit_id: int,
    category: Category,
    description: str,
    now: datetime,
    title: str | None = None,
    preferred_from: datetime | None = None,
    preferred_to: datetime | None = None,
) -> Ticket:
    """报事报修: an owner asks for a repair in one of their units."""
    if owner.role is not Role.OWNER:
        raise TicketError("repair requests are made by owners; staff open tickets with open_from_staff", 403)
    if unit_id not in reach(session, owner).unit_ids:
        raise TicketError(f"unit {unit_id} not found", status=404)
    if not description.strip():
        raise TicketError("describe the problem: the technician reads it before coming", status=422)
    unit = session.get(Unit, unit_id)
    assert unit is not None  # in the owner's reach
    return open_ticket(
        session,
        site_id=unit.site_id,
        source=Source.OWNER,
        category=category,
        priority=Priority.NORMAL,
        title=title or description.strip()[:60],
        description=description,
        reporter_id=owner.id,
        unit_id=unit.id,
        preferred_from=preferred_from,
        preferred_to=preferred_to,
        actor=_actor(owner),
        now=now,
    )


def open_from_staff(
    session: Session,
    user: User,
    *,
    site_id: int,
    category: Category,
    priority: Priority,
    title: str,
    now: datetime,
    description: str = "",
    unit_id: int | None = None,
    building_id: int | None = None,
    equipment_id: int | None = None,
    meter_id: int | None = None,
) -> Ticket:
    if user.role is Role.OWNER:
        raise TicketError("owners make repair requests for their units instead", 403)
    r = reach(session, user)
    if not r.all_sites and site_id not in r.site_ids:
        raise TicketError(f"site {site_id} not found", status=404)
    return open_ticket(
        session,
        site_id=site_id,
        source=Source.STAFF,
        category=category,
        priority=priority,
        title=title,
        description=description,
        reporter_id=user.id,
        unit_id=unit_id,
        building_id=building_id,
        equipment_id=equipment_id,
        meter_id=meter_id,
        actor=_actor(user),
        now=now,
    )


def open_from_patrol(
    session: Session,
    *,
    site_id: int,
    exception_ref: str,
    title: str,
    description: str,
    now: datetime,
    category: Category = Category.GENERAL,
    priority: Priority = Priority.NORMAL,
    building_id: int | None = None,
    equipment_id: int | None = None,
    reporter_id: int | None = None,
) -> Ticket:
    """A patrol exception (broken light, leaking pipe seen on a round); ``exception_ref`` names it uniquely, so
    reporting it twice opens one ticket."""
    return open_ticket(
        session,
        site_id=site_id,
        source=Source.PATROL,
        category=category,
        priority=priority,
        title=title,
        description=description,
        reporter_id=reporter_id,
        building_id=building_id,
        equipment_id=equipment_id,
        dedupe_key=f"patrol:{exception_ref}",
        actor=Actor("patrol", reporter_id),
        now=now,
    )


def open_from_maintenance(
    session: Session,
    *,
    site_id: int,
    equipment_id: int,
    check_ref: str,
    title: str,
    description: str,
    now: datetime,
    category: Category | None = None,
    priority: Priority = Priority.HIGH,
    reporter_id: int | None = None,
) -> Ticket:
    """A failed maintenance check; ``check_ref`` (task and item) opens one ticket however often it is reported.
    Without a category, the equipment type decides it."""
    if category is None:
        equipment = _check_in_site(session, Equipment, equipment_id, site_id, "equipment")
        category = EQUIPMENT_CATEGORY.get(equipment.type.lower(), Category.GENERAL)
    return open_ticket(
        session,
        site_id=site_id,
        source=Source.MAINTENANCE,
        category=category,
        priority=priority,
        title=title,
        description=description,
        reporter_id=reporter_id,
        equipment_id=equipment_id,
        dedupe_key=f"maintenance:{check_ref}",
        actor=Actor("maintenance", reporter_id),
        now=now,
    )


# --- dispatch ---


def _excluded(session: Session, ticket: Ticket) -> set[int]:
    """Technicians who timed out or declined this ticket since it last (re)opened: never offered it again."""
    return set(
        session.scalars(
            select(Assignment.technician_id).where(
                Assignment.ticket_id == ticket.id,
                Assignment.state.in_((AssignmentState.TIMED_OUT, AssignmentState.DECLINED)),
                Assignment.offered_at >= ticket.sla_started_at,
            )
        )
    )


def _unanswered_grab_round(session: Session, ticket: Ticket) -> bool:
    offered = session.scalar(
        select(GrabOffer.id).where(GrabOffer.ticket_id == ticket.id, GrabOffer.round == ticket.dispatch_round).limit(1)
    )
    return offered is not None


def accept_timeout_s(session: Session, site_id: int) -> int:
    settings = site_settings(session, site_id)
    return settings.accept_timeout_s if settings else DEFAULT_ACCEPT_TIMEOUT_S


def dispatch_ticket(session: Session, ticket: Ticket, now: datetime) -> Assignment | None:
    """One dispatch round for a new ticket: the best-scored technician gets it (or, at a grab-mode site, every
    qualified technician is offered it; if nobody grabs it in time the next round assigns the best). Nobody
    qualified: the ticket stays new, staff are told, and dispatch is tried again later."""
    if ticket.state is not TicketState.NEW:
        return None
    settings = site_settings(session, ticket.site_id)
    timeout = accept_timeout_s(session, ticket.site_id)
    ranked = rank(session, ticket, now, _excluded(session, ticket))
    if not ranked:
        ticket.next_dispatch_at = now + REDISPATCH_RETRY
        record_event(session, ticket, DISPATCH, "no_technician", now, data={"category": ticket.category.value})
        notices.no_technician(session, ticket, now)
        return None
    if settings is not None and settings.grab_mode and not _unanswered_grab_round(session, ticket):
        ticket.dispatch_round += 1
        deadline = now + timedelta(seconds=timeout)
        for candidate in ranked:
            session.add(
                GrabOffer(
                    ticket_id=ticket.id,
                    round=ticket.dispatch_round,
                    technician_id=candidate.technician.id,
                    offered_at=now,
                    deadline_at=deadline,
                )
            )
            notices.offered(session, ticket, candidate.technician, now)
        ticket.next_dispatch_at = deadline
        record_event(
            session,
            ticket,
            DISPATCH,
            "offered",
            now,
            data={"round": ticket.dispatch_round, "technicians": [c.technician.id for c in ranked]},
        )
        return None
    best = ranked[0]
    return _assign(session, ticket, best.technician, AssignmentMode.AUTO, best.breakdown, DISPATCH, now, timeout)


def _withdraw_offers(session: Session, ticket: Ticket, now: datetime) -> None:
    """The live assignment (offered or accepted) is withdrawn: overridden, cancelled, reopened or cleared."""
    for a in session.scalars(
        select(Assignment).where(Assignment.ticket_id == ticket.id, Assignment.state == AssignmentState.OFFERED)
    ):
        a.state = AssignmentState.WITHDRAWN
        a.responded_at = now
    ticket.next_dispatch_at = None


def _assign(
    session: Session,
    ticket: Ticket,
    tech: Technician,
    mode: AssignmentMode,
    score: dict[str, Any],
    actor: Actor,
    now: datetime,
    timeout_s: int,
) -> Assignment:
    _withdraw_offers(session, ticket, now)
    ticket.dispatch_round += 1
    assignment = Assignment(
        ticket_id=ticket.id,
        round=ticket.dispatch_round,
        technician_id=tech.id,
        mode=mode,
        state=AssignmentState.OFFERED,
        score=score,
        assigned_by=actor.user_id,
        offered_at=now,
        deadline_at=now + timedelta(seconds=timeout_s),
    )
    try:
        with session.begin_nested():
            session.add(assignment)
            session.flush()
    except IntegrityError:
        raise TicketError(
            f"ticket {ticket.id} was dispatched in round {ticket.dispatch_round} already (by another hub process)", 409
        ) from None
    ticket.assignee_id = tech.id
    _move(
        session,
        ticket,
        Action.ASSIGN,
        actor,
        now,
        data={"technician_id": tech.id, "mode": mode.value, "round": assignment.round, "score": score},
    )
    notices.assigned(session, ticket, tech, timeout_s, now)
    return assignment


def assign_manually(session: Session, ticket: Ticket, user: User, technician_id: int, now: datetime) -> Assignment:
    """Staff override: give the ticket to this technician, whatever the score says (the score is still stored)."""
    _require_staff(user, "dispatch by hand")
    tech = session.get(Technician, technician_id)
    if tech is None or tech.site_id != ticket.site_id:
        raise TicketError(f"technician {technician_id} does not work at this ticket's site", status=422)
    if ticket.category.value not in tech.skills:
        raise TicketError(
            f"technician {technician_id} lacks the skill {ticket.category.value} (has: {', '.join(tech.skills)})", 422
        )
    target(Action.ASSIGN, ticket.state, ticket.id)
    scored = {c.technician.id: c.breakdown for c in rank(session, ticket, now)}
    score = {"override_by": user.username, **scored.get(tech.id, {})}
    return _assign(
        session,
        ticket,
        tech,
        AssignmentMode.MANUAL,
        score,
        _actor(user),
        now,
        accept_timeout_s(session, ticket.site_id),
    )


def current_assignment(session: Session, ticket: Ticket) -> Assignment | None:
    return session.scalars(
        select(Assignment).where(Assignment.ticket_id == ticket.id, Assignment.round == ticket.dispatch_round)
    ).first()


def _my_offer(session: Session, ticket: Ticket, user: User) -> tuple[Technician, Assignment]:
    tech = technician_of(session, user, ticket.site_id)
    assignment = current_assignment(session, ticket)
    if tech is None or assignment is None or assignment.technician_id != tech.id:
        raise TicketError(f"ticket {ticket.id} is not assigned to you", status=403)
    return tech, assignment


def accept(session: Session, ticket: Ticket, user: User, now: datetime) -> Ticket:
    target(Action.ACCEPT, ticket.state, ticket.id)
    _, assignment = _my_offer(session, ticket, user)
    assignment.state = AssignmentState.ACCEPTED
    assignment.responded_at = now
    ticket.accepted_at = ticket.accepted_at or now
    _move(session, ticket, Action.ACCEPT, _actor(user), now)
    return ticket


def decline(session: Session, ticket: Ticket, user: User, reason: str, now: datetime) -> Ticket:
    """The technician cannot take it: it goes to the next best at once."""
    target(Action.DECLINE, ticket.state, ticket.id)
    if not reason.strip():
        raise TicketError("say why you decline: the dispatcher sees it", status=422)
    _, assignment = _my_offer(session, ticket, user)
    assignment.state = AssignmentState.DECLINED
    assignment.responded_at = now
    ticket.assignee_id = None
    _move(session, ticket, Action.DECLINE, _actor(user), now, note=reason.strip())
    dispatch_ticket(session, ticket, now)
    return ticket


def time_out(session: Session, ticket: Ticket, assignment: Assignment, now: datetime) -> Assignment | None:
    """Accept timeout: the offer lapses and the next best technician (not this one) gets the ticket."""
    assignment.state = AssignmentState.TIMED_OUT
    assignment.responded_at = now
    ticket.assignee_id = None
    _move(session, ticket, Action.TIME_OUT, TIMERS, now, data={"technician_id": assignment.technician_id})
    return dispatch_ticket(session, ticket, now)


def grab(session: Session, ticket: Ticket, user: User, now: datetime) -> Ticket:
    """抢单: the first qualified technician to grab an offered ticket gets it; the unique (ticket, round) of the
    assignment makes sure only one can, even from two hub processes at once."""
    target(Action.GRAB, ticket.state, ticket.id)
    tech = technician_of(session, user, ticket.site_id)
    offer = None
    if tech is not None:
        offer = session.scalars(
            select(GrabOffer).where(
                GrabOffer.ticket_id == ticket.id,
                GrabOffer.round == ticket.dispatch_round,
                GrabOffer.technician_id == tech.id,
            )
        ).first()
    if tech is None or offer is None:
        raise TicketError(f"ticket {ticket.id} is not offered to you", status=403)
    if offer.deadline_at <= now:
        raise TicketError(f"the offer of ticket {ticket.id} ended at {offer.deadline_at.isoformat()}", status=409)
    assignment = Assignment(
        ticket_id=ticket.id,
        round=ticket.dispatch_round,
        technician_id=tech.id,
        mode=AssignmentMode.GRAB,
        state=AssignmentState.ACCEPTED,
        score={},
        offered_at=offer.offered_at,
        deadline_at=offer.deadline_at,
        responded_at=now,
    )
    try:
        with session.begin_nested():
            session.add(assignment)
            session.flush()
    except IntegrityError:
        raise TicketError(f"ticket {ticket.id} was grabbed by another technician first", status=409) from None
    ticket.assignee_id = tech.id
    ticket.accepted_at = ticket.accepted_at or now
    ticket.next_dispatch_at = None
    _move(session, ticket, Action.GRAB, _actor(user), now, data={"round": assignment.round})
    return ticket


# --- work ---


def _require_staff(user: User, what: str) -> None:
    if user.role not in STAFF_ACTORS:
        raise TicketError(f"only admins and engineers may {what}", status=403)


def _require_worker(session: Session, ticket: Ticket, user: User) -> None:
    """The assigned technician, or staff acting for them."""
    if user.role in STAFF_ACTORS:
        return
    tech = technician_of(session, user, ticket.site_id)
    if tech is None or ticket.assignee_id != tech.id:
        raise TicketError(f"ticket {ticket.id} is not assigned to you", status=403)


def arrive(session: Session, ticket: Ticket, user: User, now: datetime) -> Ticket:
    """Check-in on site: work starts, and the technician's last known location is the ticket's building."""
    target(Action.ARRIVE, ticket.state, ticket.id)
    _require_worker(session, ticket, user)
    ticket.arrived_at = now
    if ticket.building_id is not None and ticket.assignee_id is not None:
        tech = session.get(Technician, ticket.assignee_id)
        if tech is not None:
            tech.location_building_id = ticket.building_id
            tech.location_at = now
    _move(session, ticket, Action.ARRIVE, _actor(user), now)
    return ticket


def start(session: Session, ticket: Ticket, user: User, now: datetime) -> Ticket:
    """Work starts without a check-in, or a ticket to verify turns out still faulty."""
    target(Action.START, ticket.state, ticket.id)
    _require_worker(session, ticket, user)
    _move(session, ticket, Action.START, _actor(user), now)
    return ticket


def _end_pause(session: Session, ticket: Ticket, now: datetime) -> None:
    if ticket.waiting_owner_since is None:
        return
    for pause in session.scalars(
        select(TicketPause).where(TicketPause.ticket_id == ticket.id, TicketPause.ended_at.is_(None))
    ):
        pause.ended_at = now
    ticket.waiting_owner_since = None


def complete(
    session: Session, ticket: Ticket, user: User, now: datetime, *, note: str = "", chargeable: bool = False
) -> Ticket:
    """Done. A chargeable repair in a private unit bills the owner the ticket's materials and labour: a REPAIR
    ledger entry, pending until approved as the site's billing rules require."""
    target(Action.COMPLETE, ticket.state, ticket.id)
    _require_worker(session, ticket, user)
    if chargeable:
        _charge(session, ticket, user, now)
    _end_pause(session, ticket, now)
    ticket.completed_at = now
    _move(
        session,
        ticket,
        Action.COMPLETE,
        _actor(user),
        now,
        note=note.strip(),
        data={"charge_fen": ticket.charge_fen} if chargeable else None,
    )
    return ticket


def _charge(session: Session, ticket: Ticket, user: User, now: datetime) -> None:
    if ticket.unit_id is None:
        raise TicketError("only a repair in a private unit can be charged: this ticket has no unit", status=422)
    amounts = session.scalars(select(WorkItem.amount_fen).where(WorkItem.ticket_id == ticket.id)).all()
    amount = sum(amounts)
    if amount <= 0:
        raise TicketError("add the materials and labour to charge before completing a chargeable repair", 422)
    if amount > MAX_CHARGE_FEN:
        raise TicketError(f"a repair charge of {amount} fen is more than the largest allowed ({MAX_CHARGE_FEN})", 422)
    entry = LedgerEntry(
        site_id=ticket.site_id,
        unit_id=ticket.unit_id,
        kind=EntryKind.REPAIR,
        amount_fen=amount,
        reason=f"维修费 工单 #{ticket.id} {ticket.title}",
        state=EntryState.PENDING,
        approvals_required=approvals_required(session, ticket.site_id, EntryKind.REPAIR, amount),
        dedupe_key=f"ticket:{ticket.id}:repair:{ticket.reopen_count}",
        created_by=user.id,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    ticket.charge_fen = amount
    ticket.ledger_entry_id = entry.id
    record(
        session,
        _actor(user),
        [
            Change(
                "create",
                "ledger_entry",
                entry.id,
                f"repair {amount} fen, ticket {ticket.id}",
                None,
                {
                    "kind": "repair",
                    "amount_fen": amount,
                    "ticket_id": ticket.id,
                    "unit_id": ticket.unit_id,
                    "state": "pending",
                },
                ticket.site_id,
            )
        ],
        now,
    )


def follow_up(session: Session, ticket: Ticket, user: User, note: str, now: datetime) -> Ticket:
    """回访: the property calls the owner back; the note is what they said."""
    target(Action.FOLLOW_UP, ticket.state, ticket.id)
    _require_staff(user, "record a follow-up")
    _move(session, ticket, Action.FOLLOW_UP, _actor(user), now, note=note.strip())
    return ticket


def close(session: Session, ticket: Ticket, user: User, now: datetime, note: str = "") -> Ticket:
    target(Action.CLOSE, ticket.state, ticket.id)
    _require_staff(user, "close tickets")
    ticket.closed_at = now
    _move(session, ticket, Action.CLOSE, _actor(user), now, note=note.strip())
    return ticket


def _is_reporter(ticket: Ticket, user: User) -> bool:
    return user.role is Role.OWNER and ticket.reporter_id == user.id


def reopen(session: Session, ticket: Ticket, user: User, reason: str, now: datetime) -> Ticket:
    """The fault is back or the work was not right: the ticket starts over (new SLA clocks) and is dispatched."""
    target(Action.REOPEN, ticket.state, ticket.id)
    if not _is_reporter(ticket, user):
        _require_staff(user, "reopen tickets")
    if not reason.strip():
        raise TicketError("say why the ticket is reopened", status=422)
    _restart(ticket, now)
    _move(session, ticket, Action.REOPEN, _actor(user), now, note=reason.strip())
    dispatch_ticket(session, ticket, now)
    return ticket


def _restart(ticket: Ticket, now: datetime) -> None:
    """A reopened ticket starts over: new SLA clocks (a new cycle of marks), nobody assigned."""
    ticket.reopen_count += 1
    ticket.sla_started_at = now
    ticket.accepted_at = ticket.arrived_at = ticket.completed_at = ticket.closed_at = None
    ticket.assignee_id = None
    ticket.escalation_level = 0


def cancel(session: Session, ticket: Ticket, user: User, reason: str, now: datetime) -> Ticket:
    """Cancel with a reason: staff any time before completion; the reporting owner until work has started."""
    target(Action.CANCEL, ticket.state, ticket.id)
    if _is_reporter(ticket, user):
        if ticket.state not in (TicketState.NEW, TicketState.ASSIGNED, TicketState.ACCEPTED):
            raise TicketError(f"work on ticket {ticket.id} has started: ask the property office to cancel it", 409)
    else:
        _require_staff(user, "cancel tickets")
    if not reason.strip():
        raise TicketError("give a reason for cancelling", status=422)
    _withdraw_offers(session, ticket, now)
    _end_pause(session, ticket, now)
    ticket.cancel_reason = reason.strip()
    ticket.closed_at = now
    _move(session, ticket, Action.CANCEL, _actor(user), now, note=reason.strip())
    return ticket


def wait_for_owner(session: Session, ticket: Ticket, user: User, reason: str, now: datetime) -> Ticket:
    """The owner is not home or must decide: the SLA clocks stop until ``resume``."""
    if ticket.state not in (TicketState.ASSIGNED, TicketState.ACCEPTED, TicketState.IN_PROGRESS):
        raise InvalidTransition(
            f"cannot wait for the owner: ticket {ticket.id} is {ticket.state.value}; "
            "only assigned, accepted or in_progress tickets can wait"
        )
    _require_worker(session, ticket, user)
    if ticket.waiting_owner_since is not None:
        raise TicketError(f"ticket {ticket.id} waits for the owner already (since {ticket.waiting_owner_since})", 409)
    if not reason.strip():
        raise TicketError("say what the owner is to do (the owner is told)", status=422)
    session.add(TicketPause(ticket_id=ticket.id, started_at=now, reason=reason.strip()))
    ticket.waiting_owner_since = now
    session.flush()
    event = record_event(
        session, ticket, _actor(user), "wait_for_owner", now, from_state=ticket.state, note=reason.strip()
    )
    notices.waiting_for_owner(session, ticket, reason.strip(), event.id, now)
    reschedule_sla(session, ticket, now)
    return ticket


def resume(session: Session, ticket: Ticket, user: User, now: datetime) -> Ticket:
    if ticket.waiting_owner_since is None:
        raise TicketError(f"ticket {ticket.id} is not waiting for the owner", status=409)
    if not _is_reporter(ticket, user):
        _require_worker(session, ticket, user)
    _end_pause(session, ticket, now)
    session.flush()
    record_event(session, ticket, _actor(user), "resume", now, from_state=ticket.state)
    reschedule_sla(session, ticket, now)
    return ticket


def attach_photo(
    session: Session, store: AttachmentStore, ticket: Ticket, user: User, filename: str, data: bytes, now: datetime
) -> Attachment:
    """A photo from the reporting owner, the technician at work, or staff."""
    if not _is_reporter(ticket, user):
        _require_worker(session, ticket, user)
    row = store.save(session, ticket, user, filename, data, now)
    record_event(session, ticket, _actor(user), "photo", now, from_state=ticket.state, data={"attachment_id": row.id})
    return row


def attachments_of(session: Session, ticket: Ticket) -> list[Attachment]:
    return list(session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id).order_by(Attachment.id)))


def add_comment(session: Session, ticket: Ticket, user: User, body: str, now: datetime) -> Comment:
    body = body.strip()
    if not body or len(body) > 2000:
        raise TicketError("a comment needs 1 to 2000 characters", status=422)
    comment = Comment(ticket_id=ticket.id, author_id=user.id, body=body, at=now)
    session.add(comment)
    session.flush()
    record_event(
        session, ticket, _actor(user), "comment", now, from_state=ticket.state, data={"comment_id": comment.id}
    )
    return comment


def add_item(
    session: Session,
    ticket: Ticket,
    user: User,
    *,
    kind: ItemKind,
    description: str,
    quantity: Decimal,
    unit_price_fen: int,
    now: datetime,
) -> WorkItem:
    """Materials used or labour; the amount is quantity x unit price, rounded half up to a fen."""
    if ticket.state not in (TicketState.ACCEPTED, TicketState.IN_PROGRESS, TicketState.VERIFY):
        raise InvalidTransition(
            f"cannot add materials or labour: ticket {ticket.id} is {ticket.state.value}; "
            "only accepted, in_progress or verify tickets take them"
        )
    _require_worker(session, ticket, user)
    if not description.strip():
        raise TicketError("say what the material or labour is", status=422)
    if quantity <= 0 or unit_price_fen < 0:
        raise TicketError("quantity must be positive and the unit price not negative", status=422)
    amount = int((quantity * unit_price_fen).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    item = WorkItem(
        ticket_id=ticket.id,
        kind=kind,
        description=description.strip()[:200],
        quantity=quantity,
        unit_price_fen=unit_price_fen,
        amount_fen=amount,
        added_by=user.id,
        at=now,
    )
    session.add(item)
    session.flush()
    record_event(
        session,
        ticket,
        _actor(user),
        "item",
        now,
        from_state=ticket.state,
        data={"item_id": item.id, "kind": kind.value, "amount_fen": amount},
    )
    return item


def rate(
    session: Session,
    ticket: Ticket,
    user: User,
    *,
    speed: int,
    attitude: int,
    quality: int,
    comment: str,
    now: datetime,
) -> Rating:
    """The reporting owner rates a finished ticket, once."""
    if not _is_reporter(ticket, user):
        raise TicketError("only the owner who reported the ticket can rate it", status=403)
    if ticket.state not in (TicketState.DONE, TicketState.FOLLOW_UP, TicketState.CLOSED):
        raise TicketError(
            f"ticket {ticket.id} is {ticket.state.value}: it can be rated once it is done or closed", status=409
        )
    if any(not 1 <= v <= 5 for v in (speed, attitude, quality)):
        raise TicketError("ratings are whole numbers from 1 to 5", status=422)
    rating = Rating(
        ticket_id=ticket.id,
        user_id=user.id,
        speed=speed,
        attitude=attitude,
        quality=quality,
        comment=comment.strip(),
        at=now,
    )
    try:
        with session.begin_nested():
            session.add(rating)
            session.flush()
    except IntegrityError:
        raise TicketError(f"ticket {ticket.id} was rated already: a rating is given once", status=409) from None
    record_event(
        session,
        ticket,
        _actor(user),
        "rate",
        now,
        from_state=ticket.state,
        data={"speed": speed, "attitude": attitude, "quality": quality},
    )
    return rating
