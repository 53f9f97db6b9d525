"""The alarm lifecycle: raise (or reopen within the flap window), acknowledge, clear, list; each change a
transition row in the caller's transaction.

A new episode opens a ticket (cloud.tickets) and notifies the site's engineers and admins; a reopened one
goes back to its ticket; a cleared one tells the ticket, which moves to verification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.alarms.models import Alarm, AlarmState, AlarmTransition, RuleKind, Severity
from cloud.alarms.texts import TEXTS
from cloud.auth.models import Role, User, user_sites
from cloud.console.i18n import DEFAULT_LANG
from cloud.notify.services import notify
from cloud.tickets import services as tickets
from cloud.timeseries.query import DEFAULT_TZ

NOTIFIED_ROLES = (Role.ADMIN, Role.ENGINEER)
"""Who hears of a new alarm directly; technicians hear of it through the ticket they are dispatched."""


class AlarmError(ValueError):
    """A change the alarm's state does not allow; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Fault:
    """A fault an evaluator found: which asset, under which rule, and what it looks like."""

    site_id: int
    source_key: str
    """``rule:<id>`` or ``edge:<edge>:<edge rule>``."""
    asset_key: str
    """``equipment:<id>``, ``meter:<id>``, ``edge:<code>`` or ``device:<edge>/<device>/<point>``."""
    kind: RuleKind
    severity: Severity
    title: str
    message: str
    flap_window_s: float
    rule_id: int | None = None
    equipment_id: int | None = None
    meter_id: int | None = None
    edge: str | None = None
    device: str | None = None
    point: str | None = None
    value: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def active_key(self) -> str:
        return f"{self.source_key}|{self.asset_key}"


def open_alarm(session: Session, source_key: str, asset_key: str, *, lock: bool = True) -> Alarm | None:
    """The active or acknowledged alarm of this asset under this source, if any (locked for update)."""
    query = select(Alarm).where(Alarm.active_key == f"{source_key}|{asset_key}")
    return session.scalars(query.with_for_update() if lock else query).first()


def raise_alarm(session: Session, fault: Fault, at: datetime, now: datetime, *, repeat: bool = False) -> Alarm | None:
    """Raise ``fault`` at ``at``: a new alarm, or the episode it cleared from within the flap window, reopened.

    Returns the new or reopened alarm; None when the fault is open already (with ``repeat``, an event that
    happened again, its ``occurrences`` are counted).
    ``now`` stamps the notifications. A concurrent raise of the same fault (another replica) loses on the
    unique ``active_key`` and is treated as already open.
    """
    current = open_alarm(session, fault.source_key, fault.asset_key)
    if current is not None:
        current.occurrences += 1 if repeat else 0
        return None
    recent = session.scalars(
        select(Alarm)
        .where(
            Alarm.source_key == fault.source_key,
            Alarm.asset_key == fault.asset_key,
            Alarm.state == AlarmState.CLEARED,
            Alarm.cleared_at >= at - timedelta(seconds=fault.flap_window_s),
        )  # fmt: skip
        .order_by(Alarm.cleared_at.desc())
        .limit(1)
        .with_for_update()
    ).first()
    if recent is not None:
        return _reopen(session, recent, fault, at, now)
    alarm = Alarm(
        site_id=fault.site_id, rule_id=fault.rule_id, source_key=fault.source_key, asset_key=fault.asset_key,
        active_key=fault.active_key, kind=fault.kind, severity=fault.severity, state=AlarmState.ACTIVE,
        equipment_id=fault.equipment_id, meter_id=fault.meter_id, edge=fault.edge, device=fault.device,
        point=fault.point, title=fault.title[:200], message=fault.message, value=fault.value, raised_at=at,
        flaps=0, occurrences=1, data=fault.data,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(alarm)
            session.flush()
    except IntegrityError:
        return None
    _transition(session, alarm, None, AlarmState.ACTIVE, "raised", at, value=fault.value, message=fault.message)
    tickets.open_from_alarm(session, alarm, now)
    _notify_staff(session, alarm, now)
    return alarm


def _reopen(session: Session, alarm: Alarm, fault: Fault, at: datetime, now: datetime) -> Alarm | None:
    """The same episode again: back to active, one more flap, its ticket told once more (None: a concurrent
    raise got there first)."""
    try:
        with session.begin_nested():
            alarm.state = AlarmState.ACTIVE
            alarm.active_key = fault.active_key
            alarm.cleared_at = None
            alarm.flaps += 1
            alarm.value, alarm.message = fault.value, fault.message
            session.flush()
    except IntegrityError:
        return None
    _transition(session, alarm, AlarmState.CLEARED, AlarmState.ACTIVE, "reopened", at, value=fault.value,
                message=fault.message)  # fmt: skip
    tickets.open_from_alarm(session, alarm, now)
    return alarm


def clear_fault(
    session: Session, source_key: str, asset_key: str, at: datetime, now: datetime, *, value: float | None = None,
    message: str = "",
) -> Alarm | None:  # fmt: skip
    """Clear the open alarm of this asset under this source, if there is one."""
    alarm = open_alarm(session, source_key, asset_key)
    if alarm is None:
        return None
    clear(session, alarm, at, now, value=value, message=message)
    return alarm


def clear(
    session: Session, alarm: Alarm, at: datetime, now: datetime, *, user: User | None = None,
    value: float | None = None, message: str = "",
) -> None:  # fmt: skip
    """The fault is gone (or a person says so): cleared, and its ticket moves to verification."""
    if alarm.state is AlarmState.CLEARED:
        raise AlarmError(f"alarm {alarm.id} is cleared already (at {alarm.cleared_at:%Y-%m-%d %H:%M:%S} UTC)")
    previous = alarm.state
    alarm.state = AlarmState.CLEARED
    alarm.active_key = None
    alarm.cleared_at = at
    if value is not None:
        alarm.value = value
    session.flush()
    _transition(session, alarm, previous, AlarmState.CLEARED, "cleared", at, user=user, value=value, message=message)
    tickets.alarm_cleared(session, alarm, now)


def acknowledge(session: Session, alarm: Alarm, user: User, now: datetime, note: str = "") -> None:
    """A person has seen it: active -> acknowledged (it stays open until the fault clears)."""
    if alarm.state is not AlarmState.ACTIVE:
        raise AlarmError(f"alarm {alarm.id} is {alarm.state.value}; only an active alarm can be acknowledged")
    alarm.state = AlarmState.ACKNOWLEDGED
    alarm.acknowledged_at = now
    alarm.acknowledged_by = user.id
    session.flush()
    _transition(session, alarm, AlarmState.ACTIVE, AlarmState.ACKNOWLEDGED, "acknowledged", now, user=user,
                message=note)  # fmt: skip


def transitions(session: Session, alarm_id: int) -> list[AlarmTransition]:
    query = select(AlarmTransition).where(AlarmTransition.alarm_id == alarm_id).order_by(AlarmTransition.id)
    return list(session.scalars(query))


def listing(
    *, states: list[AlarmState] | None = None, site_id: int | None = None, equipment_id: int | None = None,
    meter_id: int | None = None,
) -> Select[Alarm]:  # fmt: skip
    """Alarms newest first, narrowed as asked (the caller adds the user's scope and a limit)."""
    query = select(Alarm).order_by(Alarm.raised_at.desc(), Alarm.id.desc())
    if states:
        query = query.where(Alarm.state.in_(states))
    if site_id is not None:
        query = query.where(Alarm.site_id == site_id)
    if equipment_id is not None:
        query = query.where(Alarm.equipment_id == equipment_id)
    if meter_id is not None:
        query = query.where(Alarm.meter_id == meter_id)
    return query


def _transition(
    session: Session, alarm: Alarm, before: AlarmState | None, after: AlarmState, reason: str, at: datetime, *,
    user: User | None = None, value: float | None = None, message: str = "",
) -> None:  # fmt: skip
    session.add(AlarmTransition(alarm_id=alarm.id, at=at, from_state=before, to_state=after, reason=reason,
                                user_id=user.id if user else None, value=value, message=message))  # fmt: skip


def _notify_staff(session: Session, alarm: Alarm, now: datetime) -> None:
    staff = session.scalars(
        select(User.id)
        .where(User.is_active.is_(True), User.role.in_(NOTIFIED_ROLES))
        .where(or_(User.all_sites.is_(True), User.id.in_(select(user_sites.c.user_id).where(
            user_sites.c.site_id == alarm.site_id))))
        .order_by(User.id)
    ).all()  # fmt: skip
    severity = TEXTS[f"alarm_severity_{alarm.severity.value}"][DEFAULT_LANG]
    local = alarm.raised_at.astimezone(ZoneInfo(DEFAULT_TZ))
    title = TEXTS["alarm_notify_title"][DEFAULT_LANG].format(severity=severity, title=alarm.title)
    body = TEXTS["alarm_notify_body"][DEFAULT_LANG].format(message=alarm.message, at=f"{local:%Y-%m-%d %H:%M:%S}")
    data = {"alarm_id": alarm.id, "kind": alarm.kind.value, "severity": alarm.severity.value,
            "equipment_id": alarm.equipment_id, "meter_id": alarm.meter_id}  # fmt: skip
    for user_id in staff:
        notify(session, kind="alarm.raised", title=title[:200], body=body, user_id=user_id, site_id=alarm.site_id,
               data=data, dedupe_key=f"alarm.raised:{alarm.id}:{user_id}", now=now)  # fmt: skip
