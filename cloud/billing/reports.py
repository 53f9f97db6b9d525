"""Owner statements and per-site collection reports, and their CSV and XLSX exports.

Every figure comes from the same SQL aggregates as ``cloud.billing.balances``, so a report, a statement and a
bill page never disagree. Definitions (per bill period):
- receivable: bills as issued + effective corrections, adjustments and late fees;
- waived: effective waivers and voids (shown as a positive amount);
- received: payments applied to those bills;
- outstanding: receivable - waived - received; overdue: the part of it on bills due before ``as_of``;
- collection rate: received / (receivable - waived), in percent, rounded half up to 0.01.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from openpyxl import Workbook
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from cloud.billing.balances import bill_balances, charges_fen, credit_fen, paid_fen, reductions_fen
from cloud.billing.models import Bill
from cloud.console.i18n import Lang, translate
from cloud.payments.models import Payment, PaymentMethod
from cloud.registry.models import Site, Unit


def collection_rate(received_fen: int, due_fen: int) -> Decimal | None:
    """Percent collected, e.g. Decimal("95.12"); None when nothing was due."""
    if due_fen <= 0:
        return None
    return (Decimal(received_fen) * 100 / Decimal(due_fen)).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass(frozen=True)
class CollectionRow:
    period: str
    """``YYYY-MM``, or ``total``."""
    bills: int
    receivable_fen: int
    waived_fen: int
    received_fen: int
    outstanding_fen: int
    overdue_fen: int

    @property
    def rate_percent(self) -> Decimal | None:
        return collection_rate(self.received_fen, self.receivable_fen - self.waived_fen)


@dataclass(frozen=True)
class CollectionReport:
    site_id: int
    site_code: str
    site_name: str
    period_from: str
    period_to: str
    as_of: date
    rows: list[CollectionRow]
    total: CollectionRow


def collection_report(session: Session, site: Site, period_from: str, period_to: str, as_of: date) -> CollectionReport:
    """Per period and in total, for the bills of ``site`` with periods in [period_from, period_to]."""
    per_bill = (
        select(
            Bill.period.label("period"), Bill.due_date.label("due_date"),
            (Bill.total_fen + charges_fen()).label("receivable"), (-reductions_fen()).label("waived"),
            paid_fen().label("received"),
        )
        .where(Bill.site_id == site.id, Bill.period >= period_from, Bill.period <= period_to)
        .subquery()
    )  # fmt: skip
    outstanding = per_bill.c.receivable - per_bill.c.waived - per_bill.c.received
    rows = session.execute(
        select(
            per_bill.c.period, func.count(), func.sum(per_bill.c.receivable), func.sum(per_bill.c.waived),
            func.sum(per_bill.c.received), func.sum(outstanding),
            func.sum(case((per_bill.c.due_date < as_of, outstanding), else_=0)),
        )
        .group_by(per_bill.c.period)
        .order_by(per_bill.c.period)
    )  # fmt: skip
    periods = [CollectionRow(str(row[0]), int(row[1]), *(int(v or 0) for v in row[2:])) for row in rows]
    total = CollectionRow(
        "total", sum(r.bills for r in periods), sum(r.receivable_fen for r in periods),
        sum(r.waived_fen for r in periods), sum(r.received_fen for r in periods),
        sum(r.outstanding_fen for r in periods), sum(r.overdue_fen for r in periods),
    )  # fmt: skip
    return CollectionReport(site.id, site.code, site.name, period_from, period_to, as_of, periods, total)


COLUMNS = ("report_period", "report_bills", "report_receivable", "report_waived", "report_received",
           "report_outstanding", "report_overdue", "report_rate")  # fmt: skip


def _cells(row: CollectionRow, lang: Lang) -> list[str | int | Decimal | None]:
    def money(fen: int) -> Decimal:
        return Decimal(fen) / 100

    period = translate("report_total", lang) if row.period == "total" else row.period
    return [period, row.bills, money(row.receivable_fen), money(row.waived_fen), money(row.received_fen),
            money(row.outstanding_fen), money(row.overdue_fen), row.rate_percent]  # fmt: skip


def _title(report: CollectionReport, lang: Lang) -> str:
    return (
        f"{translate('report_title', lang)} {report.site_name} {report.period_from}~{report.period_to} "
        f"({translate('report_as_of', lang)} {report.as_of.isoformat()})"
    )


def collection_csv(report: CollectionReport, lang: Lang) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet programs show the Chinese headers; amounts in yuan."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_title(report, lang)])
    writer.writerow([translate(c, lang) for c in COLUMNS])
    for row in [*report.rows, report.total]:
        writer.writerow(["" if v is None else f"{v:.2f}" if isinstance(v, Decimal) else v for v in _cells(row, lang)])
    return ("\ufeff" + out.getvalue()).encode()


def collection_xlsx(report: CollectionReport, lang: Lang) -> bytes:
    """Amounts as numbers in yuan (format 0.00), so finance can sum them further."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has one sheet
    sheet.title = report.site_code[:31]
    sheet.append([_title(report, lang)])
    sheet.append([translate(c, lang) for c in COLUMNS])
    for row in [*report.rows, report.total]:
        sheet.append(_cells(row, lang))
    for cells in sheet.iter_rows(min_row=3, min_col=3, max_col=len(COLUMNS)):
        for cell in cells:
            cell.number_format = "0.00"
    for column, width in zip("ABCDEFGH", (12, 8, 14, 14, 14, 14, 14, 10), strict=True):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class StatementBill:
    bill_id: int
    number: str
    period: str
    due_date: date
    total_fen: int
    charges_fen: int
    waived_fen: int
    paid_fen: int
    outstanding_fen: int
    overdue: bool


@dataclass(frozen=True)
class StatementPayment:
    payment_id: int
    receipt_no: str
    received_at: datetime
    method: PaymentMethod
    amount_fen: int


@dataclass(frozen=True)
class Statement:
    """A unit's account: every bill with what was charged, forgiven and paid, every payment, and the balance."""

    unit_id: int
    unit_code: str
    site_name: str
    as_of: date
    bills: list[StatementBill]
    payments: list[StatementPayment]
    outstanding_fen: int
    credit_fen: int
    net_fen: int
    """Positive: the owner owes this; negative: the owner is in credit."""


def statement(session: Session, unit: Unit, as_of: date, periods: Sequence[str] | None = None) -> Statement:
    where = [Bill.unit_id == unit.id]
    if periods:
        where.append(Bill.period.in_(list(periods)))
    bills = [
        StatementBill(
            b.bill_id,
            b.number,
            b.period,
            b.due_date,
            b.total_fen,
            b.charges_fen,
            -b.reductions_fen,
            b.paid_fen,
            b.outstanding_fen,
            b.outstanding_fen > 0 and b.due_date < as_of,
        )  # fmt: skip
        for b in bill_balances(session, *where)
    ]
    payments = [
        StatementPayment(p.id, p.receipt_no, p.received_at, p.method, p.amount_fen)
        for p in session.scalars(select(Payment).where(Payment.unit_id == unit.id).order_by(Payment.received_at))
    ]
    site_name = session.scalar(select(Site.name).where(Site.id == unit.site_id)) or ""
    owed, credit = sum(max(0, b.outstanding_fen) for b in bills), credit_fen(session, unit.id)
    return Statement(unit.id, unit.code, site_name, as_of, bills, payments, owed, credit, owed - credit)
