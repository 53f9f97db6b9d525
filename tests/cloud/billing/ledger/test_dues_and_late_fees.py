"""Reminders before the due date, overdue notices after it, and late fees by the site's rule, on a controllable
clock (``now``): capped, charged once per bill and day however often the job runs, never on a settled bill."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from cloud.billing import dues
from cloud.billing.balances import bill_balance
from cloud.billing.dues import DuesWorker, run_dues
from cloud.billing.models import EntryKind, LedgerEntry
from cloud.billing.rules import BillingPolicy
from cloud.notify.models import Notification
from cloud.payments.models import PaymentMethod
from cloud.payments.services import counter_payment
from cloud.registry.models import Unit
from tests.cloud.billing.ledger.bill_factory import Books

DUE = date(2026, 3, 10)


def at_local_noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 4, tzinfo=UTC)  # 12:00 in Asia/Shanghai


def run(site: Books, day: date) -> None:
    with site.session() as session, session.begin():
        run_dues(session, at_local_noon(day), site_id=site.site_id)


def set_policy(site: Books, rate: str, cap_rate: str | None, cap_fen: int | None, remind: int = 3) -> None:
    with site.session() as session, session.begin():
        session.add(BillingPolicy(site_id=site.site_id, late_fee_daily_rate=Decimal(rate),
                                  late_fee_cap_rate=None if cap_rate is None else Decimal(cap_rate),
                                  late_fee_cap_fen=cap_fen, reminder_days_before=remind))  # fmt: skip


def late_fees(site: Books, bill_id: int) -> list[tuple[str, int]]:
    with site.session() as session:
        rows = session.execute(
            select(LedgerEntry.dedupe_key, LedgerEntry.amount_fen)
            .where(LedgerEntry.bill_id == bill_id, LedgerEntry.kind == EntryKind.LATE_FEE)
            .order_by(LedgerEntry.dedupe_key)
        )
        return [(str(k), int(a)) for k, a in rows]


def notifications(site: Books, kind: str) -> int:
    with site.session() as session:
        count = select(func.count()).where(Notification.kind == kind, Notification.site_id == site.site_id)
        return int(session.scalar(count) or 0)


def test_late_fees_accrue_daily_from_the_day_after_the_due_date(site: Books) -> None:
    set_policy(site, "0.0005", "1", None)
    bill = site.bill("2026-02", 10_000, DUE)
    run(site, DUE)
    assert late_fees(site, bill) == []
    run(site, date(2026, 3, 11))
    assert late_fees(site, bill) == [(f"late_fee:{bill}:2026-03-11", 5)]
    run(site, date(2026, 3, 13))
    assert [k[-10:] for k, _ in late_fees(site, bill)] == ["2026-03-11", "2026-03-12", "2026-03-13"]
    with site.session() as session:
        assert bill_balance(session, bill).outstanding_fen == 10_015


def test_running_the_job_twice_does_not_charge_twice(site: Books) -> None:
    bill = site.bill("2026-02", 10_000, DUE)
    for _ in range(3):
        run(site, date(2026, 3, 12))
    assert [a for _, a in late_fees(site, bill)] == [5, 5]


def test_late_fees_stop_at_the_cap(site: Books) -> None:
    set_policy(site, "0.0005", "0.01", None)  # at most 1% of 10000 fen = 100 fen
    bill = site.bill("2026-02", 10_000, DUE)
    run(site, date(2026, 5, 30))
    fees = late_fees(site, bill)
    assert sum(a for _, a in fees) == 100
    assert len(fees) == 20
    run(site, date(2026, 6, 30))
    assert sum(a for _, a in late_fees(site, bill)) == 100


def test_the_lower_of_a_rate_cap_and_a_fixed_cap_applies(site: Books) -> None:
    set_policy(site, "0.001", "1", 33)
    bill = site.bill("2026-02", 10_000, DUE)
    run(site, date(2026, 4, 30))
    assert [a for _, a in late_fees(site, bill)] == [10, 10, 10, 3]


def test_a_settled_bill_is_never_charged(site: Books) -> None:
    bill = site.bill("2026-02", 10_000, DUE)
    run(site, date(2026, 3, 11))
    with site.session() as session, session.begin():
        unit = session.get(Unit, site.unit_id)
        assert unit is not None
        counter_payment(session, site.clerk, unit, 10_005, PaymentMethod.CASH)
    run(site, date(2026, 3, 20))
    assert late_fees(site, bill) == [(f"late_fee:{bill}:2026-03-11", 5)]


def test_a_part_payment_lowers_the_daily_fee(site: Books) -> None:
    bill = site.bill("2026-02", 10_000, DUE)
    with site.session() as session, session.begin():
        unit = session.get(Unit, site.unit_id)
        assert unit is not None
        counter_payment(session, site.clerk, unit, 6_000, PaymentMethod.CASH)
    run(site, date(2026, 3, 11))
    assert [a for _, a in late_fees(site, bill)] == [2]  # 0.05% of 4000 fen


def test_a_reminder_goes_once_before_the_due_date_and_an_overdue_notice_once_after(site: Books) -> None:
    set_policy(site, "0", None, None, remind=3)
    site.bill("2026-02", 10_000, DUE)
    run(site, date(2026, 3, 6))
    assert notifications(site, "bill.due_soon") == 0
    run(site, date(2026, 3, 7))
    run(site, date(2026, 3, 8))
    assert notifications(site, "bill.due_soon") == 1
    assert notifications(site, "bill.overdue") == 0
    run(site, date(2026, 3, 11))
    run(site, date(2026, 3, 12))
    assert notifications(site, "bill.overdue") == 1
    with site.session() as session:
        note = session.scalars(
            select(Notification).where(Notification.kind == "bill.overdue", Notification.site_id == site.site_id)
        ).one()
    assert (note.user_id, note.phone) == (site.owner.id, None)
    assert "尚欠 ¥100.00" in note.body


def test_an_owner_nobody_bound_yet_is_told_by_sms_to_the_registered_number(site: Books) -> None:
    site.bill("2026-02", 10_000, DUE, unit_id=site.other_unit_id)
    run(site, date(2026, 3, 11))
    with site.session() as session:
        note = session.scalars(
            select(Notification).where(Notification.kind == "bill.overdue", Notification.site_id == site.site_id)
        ).one()
    assert (note.user_id, note.phone) == (None, "13800000002")


def test_prepaid_credit_pays_a_bill_issued_later(site: Books) -> None:
    with site.session() as session, session.begin():
        unit = session.get(Unit, site.unit_id)
        assert unit is not None
        counter_payment(session, site.clerk, unit, 5_000, PaymentMethod.CASH)
    bill = site.bill("2026-03", 3_000, date(2026, 4, 10))
    run(site, date(2026, 4, 1))
    with site.session() as session:
        assert bill_balance(session, bill).outstanding_fen == 0


def test_the_hubs_worker_commits_bill_by_bill_chunks_and_charges_the_same(
    site: Books, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dues, "CHUNK", 1)
    first = site.bill("2026-02", 10_000, DUE)
    second = site.bill("2026-02", 20_000, DUE, unit_id=site.other_unit_id)
    worker = DuesWorker(site.engine)
    worker.run_once(at_local_noon(date(2026, 3, 11)))
    worker.run_once(at_local_noon(date(2026, 3, 11)))
    assert (late_fees(site, first), late_fees(site, second)) == (
        [(f"late_fee:{first}:2026-03-11", 5)],
        [(f"late_fee:{second}:2026-03-11", 10)],
    )
