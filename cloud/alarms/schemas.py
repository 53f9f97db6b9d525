"""API shapes: rules in (create, update) and out, alarms and their transitions out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from cloud.alarms.models import AlarmState, RuleKind, Severity

Name = Annotated[str, Field(min_length=1, max_length=100)]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: int
    name: Name
    kind: RuleKind
    severity: Severity = Severity.WARNING
    equipment_id: int | None = None
    equipment_type: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    meter_id: int | None = None
    point: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class RuleUpdate(BaseModel):
    """What may change on a rule; its kind, site and target stay (make a new rule for another)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    severity: Severity | None = None
    params: dict[str, Any] | None = None
    enabled: bool | None = None


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    name: str
    kind: RuleKind
    severity: Severity
    equipment_id: int | None
    equipment_type: str | None
    meter_id: int | None
    point: str | None
    params: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class AlarmOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int
    rule_id: int | None
    kind: RuleKind
    severity: Severity
    state: AlarmState
    title: str
    message: str
    value: float | None
    equipment_id: int | None
    meter_id: int | None
    edge: str | None
    device: str | None
    point: str | None
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    cleared_at: datetime | None
    flaps: int
    occurrences: int


class TransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    from_state: AlarmState | None
    to_state: AlarmState
    reason: str
    user_id: int | None
    value: float | None
    message: str


class AlarmDetail(AlarmOut):
    transitions: list[TransitionOut]


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=500)] = ""
