"""The ticket timer worker: accept timeouts (re-dispatch to the next best), dispatch retries and grab rounds that
ran out, and SLA warnings, breaches and escalations.

Safe on every hub replica at once: each pass claims the tickets it works on with ``SELECT ... FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so two replicas never act on one ticket, and re-checks what it claimed under the lock.
Behind the locks the database still refuses a second assignment in one dispatch round and a second SLA mark.
On SQLite (one writer at a time) the same code runs without the row locks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.db import session_factory
from cloud.tickets import notices
from cloud.tickets.models import Assignment, AssignmentState, SlaMark, Ticket, TicketState
from cloud.tickets.services import (
    TIMERS,
    current_assignment,
    dispatch_ticket,
    marks_done,
    pauses_of,
    record_event,
    reschedule_sla,
    time_out,
)
from cloud.tickets.sla import Mark, pending_marks, site_hours
from cloud.tickets.states import TicketError
from cloud.workers import PeriodicWorker

log = logging.getLogger(__name__)
BATCH = 100
LEVELS = {Mark.WARNING: 0, Mark.BREACH: 1, Mark.LEVEL2: 2}


@dataclass
class TimerCounts:
    timeouts: int = 0
    dispatched: int = 0
    sla_marks: int = 0


def _claim(session: Session, stmt: Select[Ticket]) -> list[Ticket]:
    """Lock a batch of tickets this process alone will handle (others skip them). Each pass returns how many it
    claimed and how many it acted on; a claimed ticket is never due again for the same pass at the same time."""
    locked = stmt.order_by(Ticket.id).limit(BATCH).with_for_update(skip_locked=True, of=Ticket)
    return list(session.scalars(locked.execution_options(populate_existing=True)))


def expire_offers(session: Session, now: datetime) -> tuple[int, int]:
    """Offers not accepted in time: the technician is passed over and the next best gets the ticket."""
    tickets = _claim(
        session,
        select(Ticket)
        .join(Assignment, (Assignment.ticket_id == Ticket.id) & (Assignment.round == Ticket.dispatch_round))
        .where(
            Ticket.state == TicketState.ASSIGNED,
            Assignment.state == AssignmentState.OFFERED,
            Assignment.deadline_at <= now,
        ),
    )
    done = 0
    for ticket in tickets:
        assignment = current_assignment(session, ticket)
        if (
            ticket.state is not TicketState.ASSIGNED
            or assignment is None
            or assignment.state is not AssignmentState.OFFERED
            or assignment.deadline_at is None
            or assignment.deadline_at > now
        ):
            continue
        time_out(session, ticket, assignment, now)
        done += 1
    return len(tickets), done


def retry_dispatch(session: Session, now: datetime) -> tuple[int, int]:
    """New tickets whose dispatch is due again: nobody qualified last time, or a grab round ran out."""
    tickets = _claim(session, select(Ticket).where(Ticket.state == TicketState.NEW, Ticket.next_dispatch_at <= now))
    done = 0
    for ticket in tickets:
        if ticket.state is TicketState.NEW and ticket.next_dispatch_at is not None and ticket.next_dispatch_at <= now:
            ticket.next_dispatch_at = None
            if dispatch_ticket(session, ticket, now) is not None:
                done += 1
    return len(tickets), done


def check_sla(session: Session, now: datetime) -> tuple[int, int]:
    """Record the SLA marks that fell due, tell the people each level goes to, and plan the next check."""
    tickets = _claim(session, select(Ticket).where(Ticket.next_sla_check_at <= now))
    marked = 0
    for ticket in tickets:
        due, _ = pending_marks(
            ticket, pauses_of(session, ticket), site_hours(session, ticket.site_id), now, marks_done(session, ticket)
        )
        for clock, mark in due:
            try:
                with session.begin_nested():
                    session.add(
                        SlaMark(
                            ticket_id=ticket.id, cycle=ticket.reopen_count, clock=clock.value, mark=mark.value, at=now
                        )
                    )
                    session.flush()
            except IntegrityError:
                continue
            told = notices.sla_mark(session, ticket, clock, mark, now)
            ticket.escalation_level = max(ticket.escalation_level, LEVELS[mark])
            record_event(
                session,
                ticket,
                TIMERS,
                f"sla_{mark.value}",
                now,
                from_state=ticket.state,
                data={"clock": clock.value, "level": LEVELS[mark], "notified": told},
            )
            marked += 1
        reschedule_sla(session, ticket, now)
    return len(tickets), marked


class TicketTimers(PeriodicWorker):
    """Runs the three passes every ``interval_s`` on a background thread; ``run_once(now)`` for tests and tools."""

    name = "ticket-timers"

    def __init__(self, engine: Engine, interval_s: float = 5.0, clock: Callable[[], datetime] | None = None) -> None:
        self._sessions = session_factory(engine)
        super().__init__(interval_s)
        self._clock = clock or (lambda: datetime.now(UTC))

    def run_once(self, now: datetime | None = None) -> TimerCounts:
        """Each pass in its own transactions, batch by batch, until nothing more is due."""
        now = now or self._clock()
        counts = TimerCounts()
        for attr, step in (("timeouts", expire_offers), ("dispatched", retry_dispatch), ("sla_marks", check_sla)):
            claimed = BATCH
            while claimed == BATCH:
                try:
                    with self._sessions.begin() as session:
                        claimed, done = step(session, now)
                except TicketError as exc:  # another replica acted first (SQLite): its result stands
                    log.info("ticket timers: %s", exc)
                    break
                setattr(counts, attr, getattr(counts, attr) + done)
        return counts
