"""Due dates at work: reminders before a bill is due, overdue notices after, and late fees by the site's rule.

One daily job (``run_dues``) does all three for a given moment, and may run any number of times, on several
hub processes, without telling anyone twice or charging twice: notifications carry dedupe keys (one reminder
and one overdue notice per bill and recipient, ever) and each day's late fee is a ledger entry with the dedupe
key ``late_fee:<bill>:<date>``. Days are Asia/Shanghai calendar days.

Late fees: each day from the day after the due date, ``daily rate x the amount still owed (late fees not
included, so fees never compound)``, rounded half up to the fen, until the bill's fees reach the cap. A day
the job did not run is charged when it next runs, at the amount owed then. A settled bill is never charged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session

from cloud.auth.models import User, owner_units
from cloud.billing.balances import charges_fen, late_fees_fen, paid_fen, reductions_fen
from cloud.billing.models import Bill, EntryKind, EntryState, LedgerEntry
from cloud.billing.money import yuan
from cloud.billing.rules import DEFAULT_POLICY, BillingPolicy, Policy, policy_of
from cloud.db import session_factory
from cloud.notify.models import Notification
from cloud.notify.services import notify
from cloud.payments.services import apply_credit, units_with_credit
from cloud.registry.models import Unit
from cloud.timeseries.query import DEFAULT_TZ
from cloud.workers import PeriodicWorker

log = logging.getLogger(__name__)
TZ = ZoneInfo(DEFAULT_TZ)
CHUNK = 1000
"""Bills locked and handled at a time."""


def local_day(now: datetime) -> date:
    return now.astimezone(TZ).date()


@dataclass
class DuesSummary:
    credit_applied_fen: int = 0
    reminders: int = 0
    overdue_notices: int = 0
    late_fee_entries: int = 0
    late_fees_fen: int = 0


@dataclass(frozen=True)
class OpenBill:
    id: int
    site_id: int
    unit_id: int
    number: str
    period: str
    due_date: date
    base_fen: int
    """What the bill charges, late fees left out (issued total + corrections/adjustments + waivers/voids)."""
    late_fees_fen: int
    paid_fen: int

    @property
    def outstanding_fen(self) -> int:
        return self.base_fen + self.late_fees_fen - self.paid_fen

    @property
    def principal_owed_fen(self) -> int:
        """What is owed apart from late fees: the amount a daily late fee is a percentage of."""
        return max(0, min(self.outstanding_fen, self.base_fen - self.paid_fen))


def _owed_by(site_id: int | None, due_by: date) -> list[ColumnElement[bool]]:
    where = [Bill.due_date <= due_by, Bill.total_fen + charges_fen() + reductions_fen() - paid_fen() > 0]
    return where if site_id is None else [Bill.site_id == site_id, *where]


def _lock_open_bills(session: Session, ids: Sequence[int]) -> list[OpenBill]:
    """These bills, row-locked, as they are now; those another hub process is working on are skipped (it does
    them), and those settled meanwhile are left out."""
    locked = list(session.scalars(select(Bill.id).where(Bill.id.in_(ids)).with_for_update(skip_locked=True)))
    if not locked:
        return []
    base = Bill.total_fen + charges_fen() - late_fees_fen() + reductions_fen()
    rows = session.execute(
        select(
            Bill.id,
            Bill.site_id,
            Bill.unit_id,
            Bill.number,
            Bill.period,
            Bill.due_date,
            base,
            late_fees_fen(),
            paid_fen(),
        )  # fmt: skip
        .where(Bill.id.in_(locked))
        .order_by(Bill.id)
    )
    return [bill for bill in (OpenBill(*row) for row in rows) if bill.outstanding_fen > 0]


def _recipients(session: Session, unit_ids: set[int]) -> dict[int, list[tuple[int | None, str | None]]]:
    """Per unit: its bound owner accounts, or, when nobody has bound yet, the registered phone (SMS)."""
    found: dict[int, list[tuple[int | None, str | None]]] = {u: [] for u in unit_ids}
    bound = session.execute(
        select(Unit.id, User.id)
        .select_from(owner_units)
        .join(User, User.id == owner_units.c.user_id)
        .join(Unit, Unit.id == owner_units.c.unit_id)
        .where(owner_units.c.unit_id.in_(unit_ids), User.is_active, User.phone == Unit.owner_phone)
        .order_by(User.id)
    )
    for unit_id, user_id in bound:
        found[unit_id].append((user_id, None))
    for unit_id, phone in session.execute(select(Unit.id, Unit.owner_phone).where(Unit.id.in_(unit_ids))):
        if not found[unit_id] and phone:
            found[unit_id].append((None, phone))
    return found


def _tell(
    session: Session, bills: list[OpenBill], kind: str, title: str, body: str, now: datetime
) -> int:  # fmt: skip
    """One notification per bill and recipient, ever. Keys already queued are looked up for the whole chunk in
    one query, so the hourly re-run that finds nothing new costs one query, not one per bill."""
    if not bills:
        return 0
    recipients = _recipients(session, {b.unit_id for b in bills})
    wanted = {
        f"{kind}:{bill.id}:{user_id or phone}": (bill, user_id, phone)
        for bill in bills
        for user_id, phone in recipients[bill.unit_id]
    }
    told = set(session.scalars(select(Notification.dedupe_key).where(Notification.dedupe_key.in_(list(wanted)))))
    sent = 0
    for key, (bill, user_id, phone) in wanted.items():
        if key in told:
            continue
        text = body.format(period=bill.period, number=bill.number, owed=yuan(bill.outstanding_fen),
                           due=bill.due_date.isoformat())  # fmt: skip
        queued = notify(
            session, kind=kind, title=title, body=text, user_id=user_id, phone=phone, site_id=bill.site_id,
            data={"bill_id": bill.id}, dedupe_key=key, now=now,
        )  # fmt: skip
        sent += queued is not None
    return sent


def late_fee_cap_fen(policy: Policy, base_fen: int) -> int | None:
    caps = []
    if policy.late_fee_cap_rate is not None:
        caps.append(int((Decimal(base_fen) * policy.late_fee_cap_rate).to_integral_value(ROUND_DOWN)))
    if policy.late_fee_cap_fen is not None:
        caps.append(policy.late_fee_cap_fen)
    return max(0, min(caps)) if caps else None


def daily_late_fee_fen(policy: Policy, owed_fen: int) -> int:
    return int((Decimal(owed_fen) * policy.late_fee_daily_rate).to_integral_value(ROUND_HALF_UP))


def _charged(session: Session, bills: Sequence[OpenBill]) -> set[str]:
    """Dedupe keys of the late fees these bills have been charged."""
    keys = session.scalars(
        select(LedgerEntry.dedupe_key).where(
            LedgerEntry.bill_id.in_([b.id for b in bills]), LedgerEntry.kind == EntryKind.LATE_FEE
        )
    )
    return {k for k in keys if k is not None}


def _accrue(
    session: Session, bill: OpenBill, policy: Policy, charged: set[str], today: date, now: datetime
) -> tuple[int, int]:
    """Late fees for each day from the due date's next day to today not charged yet; (entries, fen)."""
    first = bill.due_date + timedelta(days=1)
    if first > today or policy.late_fee_daily_rate <= 0:
        return 0, 0
    cap = late_fee_cap_fen(policy, bill.base_fen)
    accrued = bill.late_fees_fen
    fee = daily_late_fee_fen(policy, bill.principal_owed_fen)
    entries = total = 0
    for offset in range((today - first).days + 1):
        day = first + timedelta(days=offset)
        key = f"late_fee:{bill.id}:{day.isoformat()}"
        amount = fee if cap is None else min(fee, cap - accrued)
        if key in charged or amount <= 0:
            continue
        session.add(
            LedgerEntry(
                site_id=bill.site_id, unit_id=bill.unit_id, bill_id=bill.id, kind=EntryKind.LATE_FEE,
                amount_fen=amount, reason=f"滞纳金 {day.isoformat()}: {bill.principal_owed_fen} 分 × "
                f"{policy.late_fee_daily_rate}", state=EntryState.EFFECTIVE, approvals_required=0,
                dedupe_key=key, created_by=None, created_at=now, effective_at=now,
            )
        )  # fmt: skip
        accrued += amount
        entries += 1
        total += amount
    return entries, total


def _apply_credit(session: Session, site_id: int | None, now: datetime, summary: DuesSummary) -> None:
    for unit_id in units_with_credit(session, site_id):
        summary.credit_applied_fen += sum(a.amount_fen for a in apply_credit(session, unit_id, now))


def _open_bill_ids(session: Session, site_id: int | None, today: date) -> list[int]:
    """Unsettled bills already due or due within the longest reminder window of any site."""
    furthest = session.scalar(select(func.max(BillingPolicy.reminder_days_before))) or 0
    due_by = today + timedelta(max(furthest, DEFAULT_POLICY.reminder_days_before))
    return list(session.scalars(select(Bill.id).where(*_owed_by(site_id, due_by)).order_by(Bill.id)))


def _handle(
    session: Session, ids: Sequence[int], now: datetime, policies: dict[int, Policy], summary: DuesSummary
) -> None:
    """Remind, notify and charge late fees for these bills (one chunk, locked for this transaction)."""
    today = local_day(now)
    bills = _lock_open_bills(session, ids)
    for site in {b.site_id for b in bills} - policies.keys():
        policies[site] = policy_of(session, site)
    due_soon = [b for b in bills if today <= b.due_date <= today + timedelta(policies[b.site_id].reminder_days_before)]
    overdue = [b for b in bills if b.due_date < today]
    summary.reminders += _tell(
        session, due_soon, "bill.due_soon", "账单即将到期",
        "您 {period} 的账单（{number}）尚欠 ¥{owed}，将于 {due} 到期，请及时缴纳。", now,
    )  # fmt: skip
    summary.overdue_notices += _tell(
        session, overdue, "bill.overdue", "账单已逾期",
        "您 {period} 的账单（{number}）已于 {due} 到期，尚欠 ¥{owed}，逾期将按规定收取滞纳金。", now,
    )  # fmt: skip
    charged = _charged(session, overdue)
    for bill in overdue:
        entries, fen = _accrue(session, bill, policies[bill.site_id], charged, today, now)
        summary.late_fee_entries += entries
        summary.late_fees_fen += fen
    session.flush()


def run_dues(session: Session, now: datetime | None = None, site_id: int | None = None) -> DuesSummary:
    """Apply prepaid credit to new bills, then remind, notify overdue bills and accrue late fees, as of ``now``,
    all in the caller's transaction."""
    now = now or datetime.now(UTC)
    summary = DuesSummary()
    _apply_credit(session, site_id, now, summary)
    ids = _open_bill_ids(session, site_id, local_day(now))
    policies: dict[int, Policy] = {}
    for start in range(0, len(ids), CHUNK):
        _handle(session, ids[start : start + CHUNK], now, policies, summary)
    return summary


class DuesWorker(PeriodicWorker):
    """Runs ``run_dues`` every ``interval_s`` on a background thread; safe on every hub replica."""

    name = "dues-worker"

    def __init__(self, engine: Engine, interval_s: float = 3600.0) -> None:
        self._sessions = session_factory(engine)
        super().__init__(interval_s)

    def run_once(self, now: datetime | None = None) -> DuesSummary:
        """Like ``run_dues`` for every site, but committing each chunk of bills, so a payment at the counter
        never waits on the whole run's row locks."""
        now = now or datetime.now(UTC)
        summary = DuesSummary()
        with self._sessions.begin() as session:
            _apply_credit(session, None, now, summary)
            ids = _open_bill_ids(session, None, local_day(now))
        policies: dict[int, Policy] = {}
        for start in range(0, len(ids), CHUNK):
            if self._stop.is_set():
                break
            with self._sessions.begin() as session:
                _handle(session, ids[start : start + CHUNK], now, policies, summary)
        log.info("dues: %s", summary)
        return summary
