"""Ticket tables: tickets and their history, assignments and grab offers, technicians and shifts, SLA policies
and marks, per-site settings, comments, photos, materials/labour and ratings.

Database guarantees carry the rules that concurrent hub replicas could otherwise break: one assignment per
ticket and dispatch round (so a round is never dispatched twice and the first grab wins), one ticket per
alarm and per patrol/maintenance source (``dedupe_key``), one SLA mark per ticket, clock and level, one rating
per ticket.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, Json, SiteOwned, UtcDateTime, string_enum


class TicketState(StrEnum):
    NEW = "new"
    """待受理: nobody has it yet (or dispatch found nobody, or it was reopened)."""
    ASSIGNED = "assigned"
    """已派单: offered to one technician, waiting for them to accept."""
    ACCEPTED = "accepted"
    """已接单."""
    IN_PROGRESS = "in_progress"
    """处理中: the technician arrived and works on it."""
    VERIFY = "verify"
    """待确认: the alarm behind it cleared; someone confirms the fault is gone (complete) or not (start)."""
    DONE = "done"
    """已完成."""
    FOLLOW_UP = "follow_up"
    """回访: the property calls the owner back before closing."""
    CLOSED = "closed"
    """已关闭."""
    CANCELLED = "cancelled"
    """已取消 (with a reason)."""


OPEN_STATES = (
    TicketState.NEW,
    TicketState.ASSIGNED,
    TicketState.ACCEPTED,
    TicketState.IN_PROGRESS,
    TicketState.VERIFY,
)
"""States whose SLA clocks run; also what counts as a technician's open load."""


class Source(StrEnum):
    ALARM = "alarm"
    OWNER = "owner"
    """报事报修: an owner's repair request for their unit."""
    STAFF = "staff"
    PATROL = "patrol"
    MAINTENANCE = "maintenance"


class Category(StrEnum):
    """What a ticket needs, and a technician's skills: the same list, so matching is equality."""

    ELECTRICAL = "electrical"
    PLUMBING = "plumbing"
    LIFT = "lift"
    HVAC = "hvac"
    FIRE = "fire"
    GENERAL = "general"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Ticket(Base, SiteOwned):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_site_state", "site_id", "state"),
        CheckConstraint("state != 'cancelled' OR cancel_reason IS NOT NULL", name="cancel_has_reason"),
        CheckConstraint("source != 'owner' OR unit_id IS NOT NULL", name="owner_request_has_unit"),
        CheckConstraint("charge_fen >= 0", name="charge_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    """Where the work is: dispatch prefers technicians whose zone or last location is this building."""
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    equipment_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"), index=True)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), index=True)
    alarm_id: Mapped[int | None] = mapped_column(ForeignKey("alarms.id"), unique=True)
    """The alarm episode this ticket was opened for (one ticket per alarm)."""
    source: Mapped[Source] = mapped_column(string_enum(Source, "ticket_source"))
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    """For tickets other domains open (``alarm:<id>``, ``patrol:<...>``, ``maintenance:<...>``): opened once."""
    category: Mapped[Category] = mapped_column(string_enum(Category, "ticket_category"))
    priority: Mapped[Priority] = mapped_column(string_enum(Priority, "ticket_priority"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    preferred_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    preferred_to: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The owner's preferred visit window."""
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    """Who asked (an owner for a repair request, staff otherwise; None for automatic sources)."""
    state: Mapped[TicketState] = mapped_column(string_enum(TicketState, "ticket_state"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("technicians.id"), index=True)
    dispatch_round: Mapped[int] = mapped_column(Integer, default=0)
    """Rounds of dispatch so far; each round holds at most one assignment (database-enforced)."""
    next_dispatch_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    """When the timer worker should (re)try dispatch; None when nothing is due."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    sla_started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the SLA clocks started: opening, or the last reopen."""
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    fault_cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the linked alarm cleared."""
    waiting_owner_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Set while the SLA clocks are paused waiting for the owner."""
    response_target_s: Mapped[int] = mapped_column(Integer)
    resolution_target_s: Mapped[int] = mapped_column(Integer)
    warn_percent: Mapped[int] = mapped_column(Integer)
    level2_percent: Mapped[int] = mapped_column(Integer)
    business_hours: Mapped[bool] = mapped_column(Boolean)
    """The SLA policy as it was when the ticket opened: a later policy change does not move running clocks."""
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_sla_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    """The earliest time an SLA mark may fall due; None once the ticket stops its clocks."""
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    charge_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    """What a chargeable repair in a private unit bills the owner."""
    ledger_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))


class TicketEvent(Base):
    """The ticket's history: every transition and action, with time and actor."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(100))
    """A user's name, or the system part that acted (``dispatch``, ``timers``, ``alarms``)."""
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Technician(Base, SiteOwned):
    """A technician's profile at one site: skills, zones, duty, last known location."""

    __tablename__ = "technicians"
    __table_args__ = (UniqueConstraint("user_id", "site_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    skills: Mapped[list[str]] = mapped_column(Json, default=list)
    zone_building_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    """Buildings they cover; empty means the whole site."""
    on_duty: Mapped[bool] = mapped_column(Boolean, default=True)
    """Switched off for leave or sickness: never dispatched to while off, whatever the shift calendar says."""
    location_building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    location_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TechnicianShift(Base):
    """One shift in the calendar; dispatch prefers technicians on shift now."""

    __tablename__ = "technician_shifts"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_technician_shifts_technician_starts", "technician_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technicians.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AssignmentMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    GRAB = "grab"


class AssignmentState(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    TIMED_OUT = "timed_out"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    """Replaced by a manual override, or the ticket was cancelled or reopened."""


class Assignment(Base):
    """A ticket given to a technician in one dispatch round, with the score that chose them."""

    __tablename__ = "ticket_assignments"
    __table_args__ = (
        UniqueConstraint("ticket_id", "round"),
        Index("ix_ticket_assignments_state_deadline", "state", "deadline_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technicians.id"), index=True)
    mode: Mapped[AssignmentMode] = mapped_column(string_enum(AssignmentMode, "assignment_mode"))
    state: Mapped[AssignmentState] = mapped_column(string_enum(AssignmentState, "assignment_state"))
    score: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """The dispatch score and its parts (``cloud.tickets.dispatch``), or who overrode it."""
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    offered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Accept by then or the timer worker re-dispatches."""
    responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class GrabOffer(Base):
    """抢单: a ticket offered to every qualified technician in one round; the first to grab gets the round's
    assignment (the unique round on ``ticket_assignments`` decides)."""

    __tablename__ = "ticket_offers"
    __table_args__ = (UniqueConstraint("ticket_id", "round", "technician_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technicians.id"), index=True)
    offered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TicketSiteSettings(Base, SiteOwned):
    """Per-site dispatch and SLA settings; a site without a row uses the defaults in ``cloud.tickets.sla``."""

    __tablename__ = "ticket_site_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), unique=True)
    grab_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    accept_timeout_s: Mapped[int] = mapped_column(Integer, default=600)
    business_days: Mapped[list[int]] = mapped_column(Json, default=list)
    """ISO weekdays (1 = Monday) of business hours; empty: the site has no business hours (clocks run 24/7)."""
    business_start_min: Mapped[int] = mapped_column(Integer, default=8 * 60)
    business_end_min: Mapped[int] = mapped_column(Integer, default=18 * 60)
    """Minutes after local midnight (Asia/Shanghai)."""
    team_lead_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    """Escalation level 1."""
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    """Escalation level 2."""


class SlaPolicy(Base):
    """Response and resolution targets for a category and priority, at one site or (site None) everywhere."""

    __tablename__ = "ticket_sla_policies"
    __table_args__ = (
        UniqueConstraint("site_id", "category", "priority"),
        CheckConstraint("response_min > 0 AND resolution_min > 0", name="positive_targets"),
        CheckConstraint("warn_percent > 0 AND warn_percent < 100 AND level2_percent > 100", name="levels"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    category: Mapped[str | None] = mapped_column(String(16))
    """None: any category."""
    priority: Mapped[Priority] = mapped_column(string_enum(Priority, "ticket_priority"))
    response_min: Mapped[int] = mapped_column(Integer)
    resolution_min: Mapped[int] = mapped_column(Integer)
    business_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    warn_percent: Mapped[int] = mapped_column(Integer, default=80)
    level2_percent: Mapped[int] = mapped_column(Integer, default=150)


class SlaMark(Base):
    """A warning, breach (escalation level 1) or level-2 escalation, recorded once per ticket, clock and cycle."""

    __tablename__ = "ticket_sla_marks"
    __table_args__ = (UniqueConstraint("ticket_id", "cycle", "clock", "mark"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    cycle: Mapped[int] = mapped_column(Integer)
    """The ticket's ``reopen_count`` then: a reopened ticket's clocks start afresh."""
    clock: Mapped[str] = mapped_column(String(16))
    """response or resolution."""
    mark: Mapped[str] = mapped_column(String(16))
    """warning, breach or level2."""
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class TicketPause(Base):
    """A span while the ticket waited for the owner: SLA clocks do not run."""

    __tablename__ = "ticket_pauses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")


class Comment(Base):
    __tablename__ = "ticket_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class Attachment(Base):
    """A photo, stored on disk under its ``storage_key`` (never a path the uploader chose)."""

    __tablename__ = "ticket_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class ItemKind(StrEnum):
    MATERIAL = "material"
    LABOUR = "labour"


class WorkItem(Base):
    """Materials used and labour, priced in fen; a chargeable repair bills their sum."""

    __tablename__ = "ticket_items"
    __table_args__ = (CheckConstraint("amount_fen >= 0 AND unit_price_fen >= 0", name="not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ItemKind] = mapped_column(string_enum(ItemKind, "item_kind"))
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    """Pieces, metres, or hours for labour."""
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    """quantity x unit price, rounded half up to a fen."""
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class Rating(Base):
    """The reporting owner's rating of a finished ticket: once."""

    __tablename__ = "ticket_ratings"
    __table_args__ = (
        CheckConstraint(
            "speed BETWEEN 1 AND 5 AND attitude BETWEEN 1 AND 5 AND quality BETWEEN 1 AND 5", name="one_to_five"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    speed: Mapped[int] = mapped_column(Integer)
    attitude: Mapped[int] = mapped_column(Integer)
    quality: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime)
