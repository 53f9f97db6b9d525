"""Per-site billing rules kept as data: late fees, reminders, and how many approvals a ledger entry needs.

Finance changes these without a deployment; a site without a policy row uses ``DEFAULT_POLICY``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, Numeric, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from cloud.billing.models import EntryKind
from cloud.db import Base, SiteOwned, string_enum


class BillingPolicy(Base, SiteOwned):
    """One site's late-fee rule and reminder timing."""

    __tablename__ = "billing_policies"
    __table_args__ = (
        CheckConstraint("late_fee_daily_rate >= 0 AND late_fee_daily_rate < 0.1", name="daily_rate_range"),
        CheckConstraint("reminder_days_before >= 0", name="reminder_days_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), unique=True)
    late_fee_daily_rate: Mapped[Decimal] = mapped_column(Numeric(8, 6))
    """Fraction of the outstanding amount charged per day from the day after the due date (0.0005 = 0.05%)."""
    late_fee_cap_rate: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    """Late fees of a bill never exceed this fraction of what the bill charged (1 = 100%); None: no such cap."""
    late_fee_cap_fen: Mapped[int | None] = mapped_column(BigInteger)
    """A fixed cap per bill in fen; None: no fixed cap. With both caps the lower one applies."""
    reminder_days_before: Mapped[int] = mapped_column(Integer)
    """Owners are reminded this many days before the due date."""


class ApprovalRule(Base, SiteOwned):
    """Entries of ``kind`` whose absolute amount is at least ``min_amount_fen`` need ``levels`` approvals.

    The most demanding matching rule wins; with no rule an entry needs one approval (by someone other than its
    creator). Example: waivers from 500 yuan need 2 levels: ``(waiver, 50000, 2)``."""

    __tablename__ = "ledger_approval_rules"
    __table_args__ = (
        UniqueConstraint("site_id", "kind", "min_amount_fen"),
        CheckConstraint("levels >= 1 AND levels <= 5", name="levels_range"),
        CheckConstraint("min_amount_fen >= 0", name="min_amount_nonnegative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    kind: Mapped[EntryKind] = mapped_column(string_enum(EntryKind, "entry_kind"))
    min_amount_fen: Mapped[int] = mapped_column(BigInteger)
    levels: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Policy:
    late_fee_daily_rate: Decimal
    late_fee_cap_rate: Decimal | None
    late_fee_cap_fen: int | None
    reminder_days_before: int


DEFAULT_POLICY = Policy(
    late_fee_daily_rate=Decimal("0.0005"), late_fee_cap_rate=Decimal("1"), late_fee_cap_fen=None,
    reminder_days_before=3,
)  # fmt: skip
"""0.05% a day, capped at 100% of the bill, reminders 3 days ahead: common terms in property contracts."""


def policy_of(session: Session, site_id: int) -> Policy:
    row = session.scalar(select(BillingPolicy).where(BillingPolicy.site_id == site_id))
    if row is None:
        return DEFAULT_POLICY
    return Policy(row.late_fee_daily_rate, row.late_fee_cap_rate, row.late_fee_cap_fen, row.reminder_days_before)


def approvals_required(session: Session, site_id: int, kind: EntryKind, amount_fen: int) -> int:
    """How many approvals an entry of this kind and amount needs at this site (at least 1)."""
    levels = session.scalar(
        select(func.max(ApprovalRule.levels)).where(
            ApprovalRule.site_id == site_id, ApprovalRule.kind == kind, ApprovalRule.min_amount_fen <= abs(amount_fen)
        )
    )
    return max(1, levels or 0)
