"""Alarm tables: rules as data, alarms with their lifecycle, every transition, and the evaluator's durable state.

One active alarm per (rule, asset) is a database guarantee: ``active_key`` is unique and is set to
``<source>|<asset>`` while the alarm is active or acknowledged, and to NULL when it clears, so a second raise
of the same fault (from another replica, or a replayed event) cannot insert a second row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, Json, SiteOwned, UtcDateTime, string_enum


class RuleKind(StrEnum):
    THRESHOLD = "threshold"
    """A point of equipment (or a meter) beyond a limit, with hysteresis and minimum durations."""
    METER_OFFLINE = "meter_offline"
    """No reading from a meter for N poll intervals."""
    EDGE_OFFLINE = "edge_offline"
    """The edge's status (its MQTT will) says offline."""
    LEAK = "leak"
    """Water flowing every night hour above a floor."""
    ABNORMAL_CONSUMPTION = "abnormal_consumption"
    """A day's consumption above k times the meter's own recent median."""
    TAMPER = "tamper"
    """A counter decreased: reverse flow, a negative delta or tampering (counter_decrease events)."""
    COUNTER_ROLLOVER = "counter_rollover"
    """Informational: a counter wrapped (edge event)."""
    METER_REPLACED = "meter_replaced"
    """Informational: a counter restarted near zero (edge event)."""
    EDGE_ALARM = "edge_alarm"
    """An alarm the edge raised itself (alarm_raised / alarm_cleared events); needs no hub rule."""


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlarmState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class AlarmRule(Base, SiteOwned):
    """What to watch on a site. The target narrows it: one equipment, every equipment of a type, or one meter
    (none: every meter or edge of the site). ``params`` are kind-specific and checked by cloud.alarms.rules."""

    __tablename__ = "alarm_rules"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[RuleKind] = mapped_column(string_enum(RuleKind, "alarm_rule_kind", length=24))
    severity: Mapped[Severity] = mapped_column(string_enum(Severity, "alarm_rule_severity"))
    equipment_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"), index=True)
    equipment_type: Mapped[str | None] = mapped_column(String(32))
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), index=True)
    point: Mapped[str | None] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Alarm(Base, SiteOwned):
    """One fault episode of one asset under one rule: active -> acknowledged -> cleared.

    A re-raise within the rule's flap window reopens the same episode (``flaps`` counts it); later, it is a
    new alarm. ``source_key`` is ``rule:<id>`` for hub rules and ``edge:<edge>:<rule>`` for edge alarms.
    """

    __tablename__ = "alarms"
    __table_args__ = (Index(None, "source_key", "asset_key", "cleared_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("alarm_rules.id"), index=True)
    source_key: Mapped[str] = mapped_column(String(200))
    asset_key: Mapped[str] = mapped_column(String(200))
    active_key: Mapped[str | None] = mapped_column(String(401), unique=True)
    kind: Mapped[RuleKind] = mapped_column(string_enum(RuleKind, "alarm_kind", length=24))
    severity: Mapped[Severity] = mapped_column(string_enum(Severity, "alarm_severity"))
    state: Mapped[AlarmState] = mapped_column(string_enum(AlarmState, "alarm_state"), index=True)
    equipment_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"), index=True)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), index=True)
    edge: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(128))
    point: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Double)
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    flaps: Mapped[int] = mapped_column(Integer, default=0)
    """Times the episode cleared and came back within the flap window."""
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    """Events that repeated the fault while it was open (event-based kinds)."""
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class AlarmTransition(Base):
    """Every change of an alarm's state, with when, why and who."""

    __tablename__ = "alarm_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    from_state: Mapped[AlarmState | None] = mapped_column(string_enum(AlarmState, "from_state"))
    to_state: Mapped[AlarmState] = mapped_column(string_enum(AlarmState, "to_state"))
    reason: Mapped[str] = mapped_column(String(32))
    """raised, reopened, acknowledged, cleared."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    value: Mapped[float | None] = mapped_column(Double)
    message: Mapped[str] = mapped_column(Text, default="")


class AlarmCondition(Base):
    """A threshold rule's condition on one series, kept across restarts: since when the value has been
    beyond the limit, or back inside the band, in edge time (epoch ms)."""

    __tablename__ = "alarm_conditions"
    __table_args__ = (UniqueConstraint("rule_id", "series_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alarm_rules.id", ondelete="CASCADE"))
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id"))
    beyond_since: Mapped[int | None] = mapped_column(BigInteger)
    back_since: Mapped[int | None] = mapped_column(BigInteger)


class AlarmCursor(Base):
    """How far the evaluator has read: ``events`` by id (with ids seen missing, which a transaction still
    open may yet commit), ``series:<id>`` by (ts, seq)."""

    __tablename__ = "alarm_cursors"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    holes: Mapped[list[list[int]]] = mapped_column(Json, default=list)
    """[[event id, epoch ms first missed], ...]: looked at again until they appear or expire."""
