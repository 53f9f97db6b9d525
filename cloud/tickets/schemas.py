"""What the ticket API reads and returns, separate from the tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cloud.tickets.models import AssignmentMode, AssignmentState, Category, ItemKind, Priority, Source, TicketState


class StaffTicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: int
    category: Category
    priority: Priority = Priority.NORMAL
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    unit_id: int | None = None
    building_id: int | None = None
    equipment_id: int | None = None
    meter_id: int | None = None


class RepairRequestIn(BaseModel):
    """报事报修."""

    model_config = ConfigDict(extra="forbid")

    unit_id: int
    category: Category
    description: str = Field(min_length=1, max_length=4000)
    title: str | None = Field(default=None, max_length=200)
    preferred_from: datetime | None = None
    preferred_to: datetime | None = None


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class CompleteIn(NoteIn):
    chargeable: bool = False
    """Bill the owner the ticket's materials and labour (a repair in their unit)."""


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    technician_id: int


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=2000)


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ItemKind
    description: str = Field(min_length=1, max_length=200)
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=3)
    unit_price_fen: int = Field(ge=0, le=100_000_000)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speed: int = Field(ge=1, le=5)
    attitude: int = Field(ge=1, le=5)
    quality: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)


class TechnicianIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int
    site_id: int
    skills: list[Category] = Field(min_length=1)
    zone_building_ids: list[int] = []
    on_duty: bool = True


class DutyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_duty: bool


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    building_id: int


class ShiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: datetime
    ends_at: datetime


class SiteSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grab_mode: bool = False
    accept_timeout_s: int = Field(default=600, ge=30, le=86_400)
    business_days: list[int] = Field(default=[], description="ISO weekdays 1-7; empty: no business hours")
    business_start_min: int = Field(default=8 * 60, ge=0, le=1440)
    business_end_min: int = Field(default=18 * 60, ge=0, le=1440)
    team_lead_id: int | None = None
    manager_id: int | None = None


class SlaPolicyIn(BaseModel):
    """Targets for a priority, at one site or (site_id None) every site, for one category or (None) all."""

    model_config = ConfigDict(extra="forbid")

    site_id: int | None = None
    category: Category | None = None
    priority: Priority
    response_min: int = Field(gt=0, le=30 * 24 * 60)
    resolution_min: int = Field(gt=0, le=90 * 24 * 60)
    business_hours: bool = False
    warn_percent: int = Field(default=80, gt=0, lt=100)
    level2_percent: int = Field(default=150, gt=100, le=1000)


class ClockOut(BaseModel):
    name: str
    target_s: int
    elapsed_s: int
    running: bool
    paused: bool
    stopped_at: datetime | None
    due_at: datetime | None
    status: str


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    round: int
    technician_id: int
    mode: AssignmentMode
    state: AssignmentState
    score: dict[str, Any]
    offered_at: datetime
    deadline_at: datetime | None
    responded_at: datetime | None


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str
    data: dict[str, Any]


class CommentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    author_id: int | None
    body: str
    at: datetime


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: ItemKind
    description: str
    quantity: Decimal
    unit_price_fen: int
    amount_fen: int


class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    content_type: str
    size: int
    at: datetime


class RatingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    speed: int
    attitude: int
    quality: int
    comment: str
    at: datetime


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    building_id: int | None
    unit_id: int | None
    equipment_id: int | None
    meter_id: int | None
    alarm_id: int | None
    source: Source
    category: Category
    priority: Priority
    title: str
    description: str
    state: TicketState
    state_label: str
    allowed_actions: list[str]
    reporter_id: int | None
    assignee_id: int | None
    created_at: datetime
    accepted_at: datetime | None
    arrived_at: datetime | None
    completed_at: datetime | None
    closed_at: datetime | None
    cancel_reason: str | None
    fault_cleared_at: datetime | None
    waiting_owner_since: datetime | None
    preferred_from: datetime | None
    preferred_to: datetime | None
    escalation_level: int
    reopen_count: int
    charge_fen: int
    ledger_entry_id: int | None
    clocks: list[ClockOut]


class TicketDetailOut(TicketOut):
    assignments: list[AssignmentOut]
    history: list[EventOut]
    comments: list[CommentOut]
    items: list[ItemOut]
    photos: list[AttachmentOut]
    rating: RatingOut | None


class TechnicianOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    site_id: int
    skills: list[str]
    zone_building_ids: list[int]
    on_duty: bool
    location_building_id: int | None
    location_at: datetime | None
    open_tickets: int = 0
    on_shift: bool = False
