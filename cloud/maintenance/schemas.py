"""Maintenance API schemas: what a create call takes and what the API returns, apart from the tables."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from cloud.maintenance.models import ItemKind, PeriodUnit, TaskState

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TypeCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Reading = Annotated[Decimal, Field(max_digits=14, decimal_places=4)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemIn(_In):
    name: Name
    kind: ItemKind
    unit: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)] | None = None
    min_value: Reading | None = None
    max_value: Reading | None = None

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.kind is ItemKind.CHECK and (self.min_value is not None or self.max_value is not None):
            raise ValueError(f"item {self.name!r} is a pass/fail check: give a range only to readings")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValueError(f"item {self.name!r}: min_value {self.min_value} is above max_value {self.max_value}")
        return self


class EquipmentTypeIn(_In):
    site_id: int
    code: TypeCode
    name: Name
    period_unit: PeriodUnit
    period_count: Annotated[int, Field(gt=0, le=366)]
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=100)]


class ItemPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    position: int
    name: str
    kind: ItemKind
    unit: str | None
    min_value: Decimal | None
    max_value: Decimal | None


class EquipmentTypePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    code: str
    name: str
    period_unit: PeriodUnit
    period_count: int
    items: list[ItemPublic]


class PlanIn(_In):
    equipment_id: int
    name: Name
    responsible_id: int
    starts_on: date
    period_unit: PeriodUnit | None = None
    """Omitted: the equipment type's standard period."""
    period_count: Annotated[int, Field(gt=0, le=366)] | None = None
    lead_days: Annotated[int, Field(ge=0, le=90)] = 7
    remind_days: Annotated[int, Field(ge=0, le=90)] = 2

    @model_validator(mode="after")
    def _period(self) -> Self:
        if (self.period_unit is None) != (self.period_count is None):
            raise ValueError("give period_unit and period_count together, or neither to use the type's standard")
        return self


class PlanPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    equipment_id: int
    type_id: int
    name: str
    period_unit: PeriodUnit
    period_count: int
    starts_on: date
    lead_days: int
    remind_days: int
    responsible_id: int
    active: bool
    generated_through: date | None


class ResultIn(_In):
    item_id: int
    passed: bool | None = None
    """For checks; for readings the range decides."""
    reading: Reading | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class TaskCompletion(_In):
    results: Annotated[list[ResultIn], Field(min_length=1)]
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] = ""


class ResultPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    item_id: int
    passed: bool
    reading: Decimal | None
    note: str


class TaskPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    plan_id: int
    equipment_id: int
    assignee_id: int
    due_on: date
    state: TaskState
    done_at: datetime | None
    done_by_id: int | None
    notes: str
    ticket_id: int | None
    photos: int
    """How many photos; the pages show them."""
    results: list[ResultPublic]

    @field_validator("photos", mode="before")
    @classmethod
    def _count(cls, value: object) -> object:
        return len(value) if isinstance(value, list) else value
