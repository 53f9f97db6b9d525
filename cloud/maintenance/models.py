"""Maintenance tables: equipment types with their inspection items (the standard), plans, tasks and results.

A type's code is the ``Equipment.type`` it applies to ("pump"), per site. A plan ties one piece of equipment to
a type's standard with a period and a responsible person; the planner turns it into one task per due date,
``(plan_id, due_on)`` unique, so generating twice never makes a second task.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloud.db import Base, Json, SiteOwned, UtcDateTime, string_enum
from cloud.tickets import models as _tickets  # noqa: F401  (maint_tasks.ticket_id references its table)


class PeriodUnit(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class ItemKind(StrEnum):
    CHECK = "check"
    """Pass or fail by the technician's judgement (belt worn? leaks?)."""
    READING = "reading"
    """A number, passed when inside the item's acceptable range."""


class TaskState(StrEnum):
    OPEN = "open"
    PASSED = "passed"
    FAILED = "failed"
    """At least one check failed or reading was out of range: a ticket was opened."""


class EquipmentType(SiteOwned, Base):
    __tablename__ = "maint_equipment_types"
    __table_args__ = (
        UniqueConstraint("site_id", "code"),
        CheckConstraint("period_count > 0", name="period_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    """Equal to ``Equipment.type`` of the equipment it describes."""
    name: Mapped[str] = mapped_column(String(100))
    period_unit: Mapped[PeriodUnit] = mapped_column(string_enum(PeriodUnit, "period_unit"))
    period_count: Mapped[int] = mapped_column(Integer)
    """The standard's maintenance period; a plan starts from it and may differ."""

    items: Mapped[list[InspectionItem]] = relationship(
        order_by="InspectionItem.position", cascade="all, delete-orphan", lazy="selectin"
    )


class InspectionItem(Base):
    __tablename__ = "maint_inspection_items"
    __table_args__ = (
        UniqueConstraint("type_id", "position"),
        CheckConstraint("kind = 'reading' OR (min_value IS NULL AND max_value IS NULL)", name="range_on_readings"),
        CheckConstraint("min_value IS NULL OR max_value IS NULL OR min_value <= max_value", name="range_ordered"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("maint_equipment_types.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[ItemKind] = mapped_column(string_enum(ItemKind, "inspection_kind"))
    unit: Mapped[str | None] = mapped_column(String(16))
    min_value: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    max_value: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))

    def accepts(self, reading: Decimal) -> bool:
        """Whether a reading is inside the acceptable range (bounds included; an open bound accepts all)."""
        return (self.min_value is None or reading >= self.min_value) and (
            self.max_value is None or reading <= self.max_value
        )


class MaintenancePlan(SiteOwned, Base):
    __tablename__ = "maint_plans"
    __table_args__ = (
        CheckConstraint("period_count > 0", name="period_positive"),
        CheckConstraint("lead_days >= 0 AND remind_days >= 0", name="days_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("maint_equipment_types.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    period_unit: Mapped[PeriodUnit] = mapped_column(string_enum(PeriodUnit, "period_unit"))
    period_count: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[date] = mapped_column(Date)
    """The first due date (Asia/Shanghai calendar); later ones follow every period."""
    lead_days: Mapped[int] = mapped_column(Integer)
    """A task is generated this many days before it is due."""
    remind_days: Mapped[int] = mapped_column(Integer)
    """The responsible person is reminded this many days before the due date."""
    responsible_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    generated_through: Mapped[date | None] = mapped_column(Date)
    """The latest due date the planner has looked at: it resumes after it, never before."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MaintenanceTask(SiteOwned, Base):
    __tablename__ = "maint_tasks"
    __table_args__ = (
        UniqueConstraint("plan_id", "due_on"),
        Index("ix_maint_tasks_state_due_on", "state", "due_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("maint_plans.id"), index=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    assignee_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    due_on: Mapped[date] = mapped_column(Date)
    state: Mapped[TaskState] = mapped_column(string_enum(TaskState, "maint_task_state"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    photos: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    """Stored photo files: name, content type, size, sha256."""
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    """The ticket a failed task opened."""

    results: Mapped[list[TaskResult]] = relationship(
        order_by="TaskResult.id", cascade="all, delete-orphan", lazy="selectin"
    )


class TaskResult(Base):
    __tablename__ = "maint_task_results"
    __table_args__ = (UniqueConstraint("task_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("maint_tasks.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("maint_inspection_items.id"), index=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    reading: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    note: Mapped[str] = mapped_column(String(500), default="")
