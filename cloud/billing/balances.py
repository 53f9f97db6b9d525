"""What each bill and unit owes, in one place: bill total + effective ledger entries - payments allocated.

Computed in SQL (correlated aggregates over indexed foreign keys), so a page listing thousands of bills or a
site report costs one query, and every caller agrees on the figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, cast, func, select
from sqlalchemy.orm import Session

from cloud.billing.models import Bill, EntryKind, EntryState, LedgerEntry
from cloud.payments.models import Payment, PaymentAllocation

REDUCTIONS = (EntryKind.WAIVER, EntryKind.VOID)
"""Entries that forgive what is owed; the collection report shows them as "waived"."""


def fen_sum(column: Any) -> ColumnElement[int]:
    """SUM of a fen column as a BIGINT, never NULL (PostgreSQL sums BIGINT into NUMERIC otherwise)."""
    return cast(func.coalesce(func.sum(column), 0), BigInteger)


def _entries_sum(*kinds: EntryKind, exclude: bool = False) -> ColumnElement[int]:
    cond = LedgerEntry.kind.not_in(kinds) if exclude else LedgerEntry.kind.in_(kinds)
    return (
        select(fen_sum(LedgerEntry.amount_fen))
        .where(LedgerEntry.bill_id == Bill.id, LedgerEntry.state == EntryState.EFFECTIVE, cond)
        .correlate(Bill)
        .scalar_subquery()
    )


def charges_fen() -> ColumnElement[int]:
    """Effective entries that add to or correct the charge (corrections, adjustments, late fees, repairs)."""
    return _entries_sum(*REDUCTIONS, exclude=True)


def reductions_fen() -> ColumnElement[int]:
    """Effective waivers and voids (negative or zero)."""
    return _entries_sum(*REDUCTIONS)


def late_fees_fen() -> ColumnElement[int]:
    return _entries_sum(EntryKind.LATE_FEE)


def paid_fen() -> ColumnElement[int]:
    return (
        select(fen_sum(PaymentAllocation.amount_fen))
        .where(PaymentAllocation.bill_id == Bill.id)
        .correlate(Bill)
        .scalar_subquery()
    )


@dataclass(frozen=True)
class BillBalance:
    bill_id: int
    number: str
    unit_id: int
    period: str
    due_date: date
    total_fen: int
    """As issued."""
    charges_fen: int
    """Effective corrections, adjustments, late fees."""
    reductions_fen: int
    """Effective waivers and voids, as a negative number."""
    paid_fen: int

    @property
    def receivable_fen(self) -> int:
        return self.total_fen + self.charges_fen

    @property
    def outstanding_fen(self) -> int:
        return self.total_fen + self.charges_fen + self.reductions_fen - self.paid_fen

    @property
    def settled(self) -> bool:
        return self.outstanding_fen <= 0


def balance_query(*where: ColumnElement[bool]) -> Select[int, str, int, str, date, int, int, int, int]:
    """One row per bill matching ``where``, oldest period first, then bill id."""
    return (
        select(
            Bill.id, Bill.number, Bill.unit_id, Bill.period, Bill.due_date, Bill.total_fen, charges_fen(),
            reductions_fen(), paid_fen(),
        )
        .where(*where)
        .order_by(Bill.period, Bill.id)
    )  # fmt: skip


def bill_balances(session: Session, *where: ColumnElement[bool]) -> list[BillBalance]:
    return [BillBalance(*row) for row in session.execute(balance_query(*where))]


def bill_balance(session: Session, bill_id: int) -> BillBalance:
    found = bill_balances(session, Bill.id == bill_id)
    if not found:
        raise LookupError(f"bill {bill_id} not found")
    return found[0]


def outstanding_bills(session: Session, unit_id: int, bill_ids: Iterable[int] | None = None) -> list[BillBalance]:
    """A unit's bills that still owe something, oldest first (the order settlement pays them in)."""
    where = [Bill.unit_id == unit_id]
    if bill_ids is not None:
        where.append(Bill.id.in_(list(bill_ids)))
    return [b for b in bill_balances(session, *where) if b.outstanding_fen > 0]


def credit_fen(session: Session, unit_id: int) -> int:
    """Prepaid credit: money received for the unit not yet applied to any bill."""
    received = select(fen_sum(Payment.amount_fen)).where(Payment.unit_id == unit_id)
    applied = (
        select(fen_sum(PaymentAllocation.amount_fen))
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(Payment.unit_id == unit_id)
    )
    return int(session.scalar(received) or 0) - int(session.scalar(applied) or 0)


@dataclass(frozen=True)
class UnitBalance:
    unit_id: int
    outstanding_fen: int
    """What the unit's bills still owe."""
    credit_fen: int
    """Prepaid, not yet applied."""

    @property
    def net_fen(self) -> int:
        """Positive: the owner owes this; negative: the owner is in credit."""
        return self.outstanding_fen - self.credit_fen


def unit_balance(session: Session, unit_id: int) -> UnitBalance:
    owed = sum(max(0, b.outstanding_fen) for b in bill_balances(session, Bill.unit_id == unit_id))
    return UnitBalance(unit_id, owed, credit_fen(session, unit_id))
