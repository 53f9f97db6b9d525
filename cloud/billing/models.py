"""Bills and the ledger.

A bill is immutable once issued: what changes an owner's balance afterwards is a ledger entry against it
(correction, adjustment, waiver, void, late fee), each effective only once approved where approval is required.
Money is integer fen; signed amounts are "what the owner owes": a waiver is negative, a late fee positive.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
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

from cloud.billing.engine.allocation import AllocationMethod
from cloud.db import Base, Json, SiteOwned, UnitOwned, UtcDateTime, string_enum


class RunState(StrEnum):
    RUNNING = "running"
    PREVIEWED = "previewed"
    ISSUED = "issued"
    FAILED = "failed"


class BillRun(Base, SiteOwned):
    """One computation of a site's bills for a period. A preview writes no bills; an issue writes each unit's
    bill once (``bills`` is unique per unit and period) and, on a re-run, correction entries for differences."""

    __tablename__ = "bill_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    period: Mapped[str] = mapped_column(String(7))
    """Calendar month, ``YYYY-MM`` (Asia/Shanghai)."""
    issue: Mapped[bool] = mapped_column(Boolean)
    """False: preview only."""
    state: Mapped[RunState] = mapped_column(string_enum(RunState, "run_state"))
    units_total: Mapped[int] = mapped_column(Integer, default=0)
    units_done: Mapped[int] = mapped_column(Integer, default=0)
    """Progress, for the finance page of a long run."""
    summary: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """Totals, bills issued, corrections, unchanged, warnings (estimated readings, negative deltas)."""
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class Bill(Base, UnitOwned):
    """A unit's bill for one period: written once, never updated."""

    __tablename__ = "bills"
    __table_args__ = (UniqueConstraint("unit_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    """Printed on the bill: ``<site code>-<YYYYMM>-<unit code>``."""
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("bill_runs.id"))
    total_fen: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_date: Mapped[date] = mapped_column(Date)
    fingerprint: Mapped[str] = mapped_column(String(64))
    """Hash of the lines as issued: a re-run compares against it to know whether anything changed."""

    lines: Mapped[list[BillLine]] = relationship(
        order_by="BillLine.position",
        primaryjoin="and_(Bill.id == BillLine.bill_id, BillLine.entry_id.is_(None))",
        viewonly=True,
    )


class BillLine(Base):
    """One line an owner can check by hand: the readings used, the usage, the tier and time-of-use breakdown,
    the unit price and the amount. Lines of a correction entry carry its ``entry_id``."""

    __tablename__ = "bill_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    """energy, water, shared, loss, fixed, property_fee, repair, ..."""
    label: Mapped[str] = mapped_column(String(200))
    """As printed, in Chinese (e.g. ``电费 第一档 峰``)."""
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    quantity: Mapped[Decimal | None] = mapped_column(Numeric(16, 4))
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    """Yuan per kWh or m3, as the tariff states it."""
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """Readings used (start/end value and time, estimated flags), tier, period, allocation basis."""


class EntryKind(StrEnum):
    CORRECTION = "correction"
    """A re-run found different lines for an issued bill."""
    ADJUSTMENT = "adjustment"
    WAIVER = "waiver"
    """减免: lowers what is owed."""
    VOID = "void"
    """Cancels what is left of a bill."""
    LATE_FEE = "late_fee"
    REPAIR = "repair"
    """A chargeable repair in a private unit (from a ticket)."""


class EntryState(StrEnum):
    PENDING = "pending"
    """Waiting for approvals; changes nothing yet."""
    EFFECTIVE = "effective"
    REJECTED = "rejected"


class LedgerEntry(Base, UnitOwned):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("state != 'effective' OR effective_at IS NOT NULL", name="effective_has_time"),
        Index("ix_ledger_entries_unit_state", "unit_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    bill_id: Mapped[int | None] = mapped_column(ForeignKey("bills.id"), index=True)
    kind: Mapped[EntryKind] = mapped_column(string_enum(EntryKind, "entry_kind"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    """Signed: positive adds to what the owner owes."""
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[EntryState] = mapped_column(string_enum(EntryState, "entry_state"))
    approvals_required: Mapped[int] = mapped_column(Integer, default=0)
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    """For entries a job creates (a late fee per bill and day, a correction per bill and run): created once."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    effective_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    approvals: Mapped[list[Approval]] = relationship(order_by="Approval.level")


class Approval(Base):
    """One approver's decision on a ledger entry; the creator can never approve their own entry."""

    __tablename__ = "ledger_approvals"
    __table_args__ = (
        UniqueConstraint("entry_id", "level", name="uq_ledger_approvals_entry_level"),
        UniqueConstraint("entry_id", "user_id", name="uq_ledger_approvals_entry_user"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id", ondelete="CASCADE"))
    level: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class BillRevision(Base):
    """The fingerprint of a bill's lines as they stand: revision 0 is the bill as issued, each later one a
    correction entry. Unique per bill and revision, so two runs racing to correct one bill write one entry."""

    __tablename__ = "bill_revisions"
    __table_args__ = (UniqueConstraint("bill_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    total_fen: Mapped[int] = mapped_column(BigInteger)
    """What the bill amounts to at this revision (the bill's total plus every correction so far)."""
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    run_id: Mapped[int] = mapped_column(ForeignKey("bill_runs.id"))


class TariffKind(StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"
    PROPERTY_FEE = "property_fee"
    """Per square metre of registered floor area per month; at most one per site, applied to every unit."""


class Tariff(Base, SiteOwned):
    """A named price list of one site; what it charges lives in its dated versions."""

    __tablename__ = "tariffs"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[TariffKind] = mapped_column(string_enum(TariffKind, "tariff_kind"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    versions: Mapped[list[TariffVersion]] = relationship(order_by="TariffVersion.effective_from", viewonly=True)


class TariffVersion(Base):
    """A tariff document (validated by the engine) in force from ``effective_from`` (Asia/Shanghai date) until
    the next version. Versions are never edited: a price change is a new version."""

    __tablename__ = "tariff_versions"
    __table_args__ = (UniqueConstraint("tariff_id", "effective_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tariff_id: Mapped[int] = mapped_column(ForeignKey("tariffs.id", ondelete="CASCADE"))
    effective_from: Mapped[date] = mapped_column(Date)
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TariffAssignment(Base, SiteOwned):
    """Which tariff a meter is billed by (one per meter)."""

    __tablename__ = "tariff_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id", ondelete="CASCADE"), unique=True)
    tariff_id: Mapped[int] = mapped_column(ForeignKey("tariffs.id"), index=True)


class ReadingSource(StrEnum):
    MANUAL = "manual"
    """Typed in by staff (a meter without communication)."""
    IMPORT = "import"
    """From a CSV or XLSX file."""


class MeterReading(Base, SiteOwned):
    """A meter's register read by a person. Never updated: a wrong value is fixed by a ReadingCorrection."""

    __tablename__ = "meter_readings"
    __table_args__ = (UniqueConstraint("meter_id", "read_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    read_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[Decimal] = mapped_column(Numeric(16, 4))
    source: Mapped[ReadingSource] = mapped_column(string_enum(ReadingSource, "reading_source"))
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReadingCorrection(Base, SiteOwned):
    """The only way a reading changes: the meter's register at ``read_at`` is ``new_value``, overriding a manual
    reading or the telemetry there, with who, when, the value it replaces and why."""

    __tablename__ = "reading_corrections"
    __table_args__ = (Index("ix_reading_corrections_meter_read_at", "meter_id", "read_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    read_at: Mapped[datetime] = mapped_column(UtcDateTime)
    old_value: Mapped[Decimal | None] = mapped_column(Numeric(16, 4))
    """None when nothing was known at that instant."""
    new_value: Mapped[Decimal] = mapped_column(Numeric(16, 4))
    reason: Mapped[str] = mapped_column(Text)
    corrected_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    corrected_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MeterReplacement(Base, SiteOwned):
    """A meter swapped for a new one: the old meter's final reading and the new one's first, at one instant."""

    __tablename__ = "meter_replacements"
    __table_args__ = (UniqueConstraint("meter_id", "replaced_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    replaced_at: Mapped[datetime] = mapped_column(UtcDateTime)
    old_final: Mapped[Decimal] = mapped_column(Numeric(16, 4))
    new_initial: Mapped[Decimal] = mapped_column(Numeric(16, 4))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PoolKind(StrEnum):
    COMMON = "common"
    """A common meter's consumption, shared over the units it serves."""
    LOSS = "loss"
    """A master meter minus the sum of its child meters, shared over the units of its sub-meters."""


class SharedPool(Base, SiteOwned):
    """A shared cost (公摊): whose consumption, priced by which tariff, divided how."""

    __tablename__ = "shared_pools"
    __table_args__ = (UniqueConstraint("site_id", "code"), UniqueConstraint("meter_id", "kind"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[PoolKind] = mapped_column(string_enum(PoolKind, "pool_kind"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    """The common meter (common) or the master meter (loss)."""
    tariff_id: Mapped[int] = mapped_column(ForeignKey("tariffs.id"))
    method: Mapped[AllocationMethod] = mapped_column(string_enum(AllocationMethod, "allocation_method"))
    weights: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """Method ``weights`` only: unit code -> weight (a decimal string)."""
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    """The pooled quantity of a period is allocated only once someone approved exactly that quantity."""


class PoolApproval(Base, SiteOwned):
    """Someone reviewed a pool's quantity for a period and released it for allocation."""

    __tablename__ = "pool_approvals"
    __table_args__ = (UniqueConstraint("pool_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("shared_pools.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))
    quantity: Mapped[Decimal] = mapped_column(Numeric(16, 4))
    approved_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime] = mapped_column(UtcDateTime)
