"""SLA clocks: targets per category and priority, business hours, pauses while waiting for the owner, and the
moments a warning, a breach (escalation level 1, team lead) and escalation level 2 (manager) fall due.

Two clocks run from the moment a ticket opens (or is reopened): *response* stops when a technician accepts it,
*resolution* when it is completed. Both stand still while the ticket waits for the owner, and, for policies
with business hours at a site that has them, outside those hours (Asia/Shanghai).

Targets when neither the site nor the hub has a policy row (``ticket_sla_policies``):

| priority | response | resolution | business hours |
|---|---|---|---|
| urgent | 15 min | 4 h | no (24/7) |
| high | 30 min | 8 h | no |
| normal | 2 h | 24 h | yes |
| low | 8 h | 72 h | yes |

A warning falls due at ``warn_percent`` (80) of the target, a breach at 100 %, level 2 at ``level2_percent`` (150).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.tickets.models import Category, Priority, SlaPolicy, Ticket, TicketPause, TicketSiteSettings
from cloud.timeseries.query import DEFAULT_TZ

_TZ = ZoneInfo(DEFAULT_TZ)
_MAX_DAYS = 400
"""How far ahead a due time is searched: a site whose business hours never come would otherwise loop forever."""


@dataclass(frozen=True)
class Targets:
    response_s: int
    resolution_s: int
    business_hours: bool
    warn_percent: int = 80
    level2_percent: int = 150


DEFAULT_TARGETS: dict[Priority, Targets] = {
    Priority.URGENT: Targets(15 * 60, 4 * 3600, False),
    Priority.HIGH: Targets(30 * 60, 8 * 3600, False),
    Priority.NORMAL: Targets(2 * 3600, 24 * 3600, True),
    Priority.LOW: Targets(8 * 3600, 72 * 3600, True),
}


def targets_for(session: Session, site_id: int, category: Category, priority: Priority) -> Targets:
    """The most specific policy: this site and category, this site, the hub and category, the hub, the default."""
    rows = session.scalars(
        select(SlaPolicy).where(
            SlaPolicy.priority == priority,
            (SlaPolicy.site_id == site_id) | SlaPolicy.site_id.is_(None),
            (SlaPolicy.category == category.value) | SlaPolicy.category.is_(None),
        )
    ).all()
    if not rows:
        return DEFAULT_TARGETS[priority]
    best = max(rows, key=lambda p: (p.site_id is not None, p.category is not None))
    return Targets(
        best.response_min * 60, best.resolution_min * 60, best.business_hours, best.warn_percent, best.level2_percent
    )


@dataclass(frozen=True)
class BusinessHours:
    """Local working hours on some weekdays; SLA time counts only inside them."""

    days: frozenset[int]
    """ISO weekdays, 1 = Monday."""
    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        if not self.days or not 0 <= self.start_min < self.end_min <= 24 * 60:
            raise ValueError(
                f"business hours need at least one weekday and 0 <= start < end <= 1440 minutes "
                f"(got days {sorted(self.days)}, {self.start_min}-{self.end_min})"
            )

    def windows(self, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
        """The business-hour spans overlapping [since, until), clipped to it, in UTC."""
        spans = []
        day = since.astimezone(_TZ).date() - timedelta(days=1)
        last = until.astimezone(_TZ).date()
        while day <= last:
            if day.isoweekday() in self.days:
                midnight = datetime.combine(day, time(), _TZ)
                start = (midnight + timedelta(minutes=self.start_min)).astimezone(UTC)
                end = (midnight + timedelta(minutes=self.end_min)).astimezone(UTC)
                lo, hi = max(start, since), min(end, until)
                if lo < hi:
                    spans.append((lo, hi))
            day += timedelta(days=1)
        return spans


def site_hours(session: Session, site_id: int) -> BusinessHours | None:
    settings = session.scalars(select(TicketSiteSettings).where(TicketSiteSettings.site_id == site_id)).first()
    if settings is None or not settings.business_days:
        return None
    return BusinessHours(frozenset(settings.business_days), settings.business_start_min, settings.business_end_min)


def counted_seconds(since: datetime, until: datetime, hours: BusinessHours | None) -> float:
    """Seconds of [since, until) that count: all of them, or those in business hours."""
    if until <= since:
        return 0.0
    if hours is None:
        return (until - since).total_seconds()
    return sum((hi - lo).total_seconds() for lo, hi in hours.windows(since, until))


def advance(start: datetime, seconds: float, hours: BusinessHours | None) -> datetime | None:
    """The moment ``seconds`` of counted time after ``start`` (None if business hours never come)."""
    if hours is None:
        return start + timedelta(seconds=seconds)
    left = seconds
    cursor = start
    for _ in range(_MAX_DAYS // 7 + 1):
        horizon = cursor + timedelta(days=7)
        for lo, hi in hours.windows(cursor, horizon):
            span = (hi - lo).total_seconds()
            if span >= left:
                return lo + timedelta(seconds=left)
            left -= span
        cursor = horizon
    return None


class ClockName(StrEnum):
    RESPONSE = "response"
    RESOLUTION = "resolution"


class Mark(StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    """Escalation level 1 (team lead)."""
    LEVEL2 = "level2"
    """Escalation level 2 (manager)."""


@dataclass(frozen=True)
class Clock:
    """One clock as the API shows it."""

    name: ClockName
    target_s: int
    elapsed_s: int
    running: bool
    paused: bool
    stopped_at: datetime | None
    due_at: datetime | None
    """When it breaches if nothing changes (None if stopped, paused or already breached)."""
    status: str
    """ok, warning, breached (past target) or met / missed once stopped."""

    def thresholds(self, targets: Targets) -> dict[Mark, float]:
        return {
            Mark.WARNING: self.target_s * targets.warn_percent / 100,
            Mark.BREACH: float(self.target_s),
            Mark.LEVEL2: self.target_s * targets.level2_percent / 100,
        }


def ticket_targets(ticket: Ticket) -> Targets:
    return Targets(
        ticket.response_target_s,
        ticket.resolution_target_s,
        ticket.business_hours,
        ticket.warn_percent,
        ticket.level2_percent,
    )


def _stop_time(ticket: Ticket, name: ClockName) -> datetime | None:
    """Response stops at acceptance, resolution at completion; both at cancellation (``closed_at``)."""
    if name is ClockName.RESPONSE:
        return ticket.accepted_at or ticket.closed_at
    return ticket.completed_at or ticket.closed_at


def elapsed(ticket: Ticket, pauses: Sequence[TicketPause], until: datetime, hours: BusinessHours | None) -> float:
    """Counted seconds since the clocks started, without the time spent waiting for the owner."""
    start = ticket.sla_started_at
    total = counted_seconds(start, until, hours)
    for pause in pauses:
        lo, hi = max(pause.started_at, start), min(pause.ended_at or until, until)
        total -= counted_seconds(lo, hi, hours)
    return max(total, 0.0)


def clocks(
    ticket: Ticket, pauses: Sequence[TicketPause], site_business_hours: BusinessHours | None, now: datetime
) -> list[Clock]:
    """Both clocks of a ticket at ``now``."""
    hours = site_business_hours if ticket.business_hours else None
    targets = ticket_targets(ticket)
    paused = ticket.waiting_owner_since is not None
    result = []
    for name, target_s in (
        (ClockName.RESPONSE, ticket.response_target_s),
        (ClockName.RESOLUTION, ticket.resolution_target_s),
    ):
        stopped = _stop_time(ticket, name)
        until = min(stopped, now) if stopped is not None else now
        spent = elapsed(ticket, pauses, until, hours)
        running = stopped is None
        if running:
            status = (
                "breached"
                if spent >= target_s
                else "warning"
                if spent >= target_s * targets.warn_percent / 100
                else "ok"
            )
        else:
            status = "met" if spent <= target_s else "missed"
        due = None
        if running and not paused and spent < target_s:
            due = advance(now, target_s - spent, hours)
        result.append(Clock(name, target_s, int(spent), running, paused and running, stopped, due, status))
    return result


def pending_marks(
    ticket: Ticket,
    pauses: Sequence[TicketPause],
    site_business_hours: BusinessHours | None,
    now: datetime,
    done: set[tuple[str, str]],
) -> tuple[list[tuple[ClockName, Mark]], datetime | None]:
    """The marks due by ``now`` that are not in ``done`` (clock, mark), and when the next one falls due
    (None: none can while the clocks stand still)."""
    hours = site_business_hours if ticket.business_hours else None
    targets = ticket_targets(ticket)
    due_now: list[tuple[ClockName, Mark]] = []
    next_at: datetime | None = None
    for clock in clocks(ticket, pauses, site_business_hours, now):
        if not clock.running:
            continue
        for mark, threshold in clock.thresholds(targets).items():
            if (clock.name.value, mark.value) in done:
                continue
            if clock.elapsed_s >= threshold:
                due_now.append((clock.name, mark))
            elif not clock.paused:
                at = advance(now, threshold - clock.elapsed_s, hours)
                if at is not None and (next_at is None or at < next_at):
                    next_at = at
    return due_now, next_at
