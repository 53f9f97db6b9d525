"""Bills as an owner reads them: status, the lines with the readings behind them, corrections and waivers as
their own lines, and the payments that settled them.

Figures come from ``cloud.billing.balances`` (the one place that says what a bill owes), so the portal, the
finance pages and the collection report never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from cloud.billing.balances import BillBalance, bill_balances
from cloud.billing.models import Bill, BillLine, EntryKind, EntryState, LedgerEntry
from cloud.payments.models import Payment, PaymentAllocation
from cloud.registry.models import Meter


class BillStatus(StrEnum):
    UNPAID = "unpaid"
    PARTLY_PAID = "partly_paid"
    PAID = "paid"
    OVERDUE = "overdue"


def bill_status(balance: BillBalance, today: date) -> BillStatus:
    """Settled bills are paid whatever their date; an unsettled bill is overdue from the day after its due date."""
    if balance.settled:
        return BillStatus.PAID
    if balance.due_date < today:
        return BillStatus.OVERDUE
    return BillStatus.PARTLY_PAID if balance.paid_fen > 0 else BillStatus.UNPAID


@dataclass(frozen=True)
class BillRow:
    bill: Bill
    balance: BillBalance
    status: BillStatus


def bill_rows(session: Session, today: date, *where: ColumnElement[bool]) -> list[BillRow]:
    """Bills matching ``where``, newest period first, each with its balance and status."""
    balances = {b.bill_id: b for b in bill_balances(session, *where)}
    bills = session.scalars(select(Bill).where(Bill.id.in_(balances)).order_by(Bill.period.desc(), Bill.id)).all()
    return [BillRow(bill, balances[bill.id], bill_status(balances[bill.id], today)) for bill in bills]


@dataclass(frozen=True)
class ReadingUsed:
    """One boundary reading a line is computed from."""

    time: str
    value: str
    source: str
    """sample, interpolated or held (see ``cloud.billing.engine.readings.Reading``)."""
    estimated: bool


@dataclass(frozen=True)
class LineView:
    """A bill line with what its detail says, read the way ``cloud.billing.compute`` and ``runs`` write it: usage
    lines carry ``readings`` (start, end, flags, replacement, rollover, time-of-use split), pool lines their
    basis and pool, correction lines (the difference) the charge as it ``was`` and is ``now``."""

    line: BillLine
    meter_code: str | None
    detail: dict[str, Any]
    start: ReadingUsed | None
    end: ReadingUsed | None
    readings: dict[str, Any]
    was: dict[str, Any] | None
    """Correction lines: the charge's quantity and amount before the correction (None: a new charge)."""
    now: dict[str, Any] | None
    """Correction lines: the charge's quantity and amount after it (None: the charge is gone)."""

    @property
    def label_en(self) -> str:
        return str(self.line.detail.get("label_en") or self.line.label)


def _reading(value: Any) -> ReadingUsed | None:
    if not isinstance(value, dict) or "value" not in value:
        return None
    return ReadingUsed(str(value.get("time", "")), str(value["value"]), str(value.get("source", "")),
                       bool(value.get("estimated", False)))  # fmt: skip


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def line_views(session: Session, lines: Sequence[BillLine]) -> list[LineView]:
    meter_ids = {line.meter_id for line in lines if line.meter_id is not None}
    codes = dict(session.execute(select(Meter.id, Meter.code).where(Meter.id.in_(meter_ids))).all())
    views = []
    for line in lines:
        detail = line.detail or {}
        readings = _dict(detail.get("readings"))
        meter_code = codes.get(line.meter_id) if line.meter_id is not None else None
        start, end = _reading(readings.get("start")), _reading(readings.get("end"))
        was, now = _dict(detail.get("was")) or None, _dict(detail.get("now")) or None
        views.append(LineView(line, meter_code, detail, start, end, readings, was, now))
    return views


@dataclass(frozen=True)
class EntryView:
    """An effective ledger entry on the bill: a correction with its own lines, a waiver, a late fee, ..."""

    entry: LedgerEntry
    lines: list[LineView]


def entry_views(session: Session, bill: Bill) -> list[EntryView]:
    entries = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.bill_id == bill.id, LedgerEntry.state == EntryState.EFFECTIVE)
        .order_by(LedgerEntry.effective_at, LedgerEntry.id)
    ).all()
    corrections = [e.id for e in entries if e.kind is EntryKind.CORRECTION]
    by_entry: dict[int, list[BillLine]] = {}
    for line in session.scalars(
        select(BillLine).where(BillLine.entry_id.in_(corrections)).order_by(BillLine.entry_id, BillLine.position)
    ):
        assert line.entry_id is not None
        by_entry.setdefault(line.entry_id, []).append(line)
    return [EntryView(e, line_views(session, by_entry.get(e.id, []))) for e in entries]


@dataclass(frozen=True)
class PaymentRow:
    payment: Payment
    bill_number: str | None
    """The bill this row's money went to (None: the payment's unapplied credit)."""
    amount_fen: int


def payment_rows(session: Session, payments: Iterable[Payment]) -> list[PaymentRow]:
    """Each payment with the bills it settled, one row per bill (and one for credit left over)."""
    rows: list[PaymentRow] = []
    payments = list(payments)
    numbers = dict(
        session.execute(
            select(PaymentAllocation.id, Bill.number)
            .join(Bill, Bill.id == PaymentAllocation.bill_id)
            .where(PaymentAllocation.payment_id.in_([p.id for p in payments]))
        ).all()
    )  # fmt: skip
    for payment in payments:
        applied = 0
        for allocation in payment.allocations:
            rows.append(PaymentRow(payment, numbers[allocation.id], allocation.amount_fen))
            applied += allocation.amount_fen
        if payment.amount_fen > applied:
            rows.append(PaymentRow(payment, None, payment.amount_fen - applied))
    return rows


def bill_payments(session: Session, bill: Bill) -> list[tuple[Payment, int]]:
    """The payments that went to this bill, oldest first, with how much of each."""
    rows = session.execute(
        select(Payment, PaymentAllocation.amount_fen)
        .join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
        .where(PaymentAllocation.bill_id == bill.id)
        .order_by(PaymentAllocation.at, PaymentAllocation.id)
    )
    return [(payment, int(amount)) for payment, amount in rows]
