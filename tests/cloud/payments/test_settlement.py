"""Settlement: a payment pays the oldest bills first, a part payment leaves the rest outstanding, and money left
over is prepaid credit that the next bill consumes."""

from __future__ import annotations

from datetime import date

import pytest

from cloud.auth.services import UserError
from cloud.billing.balances import bill_balance, credit_fen, unit_balance
from cloud.payments.models import PaymentMethod
from cloud.payments.services import apply_credit, counter_payment
from cloud.registry.models import Unit
from tests.cloud.billing.ledger.bill_factory import Books


def pay(site: Books, amount_fen: int, method: PaymentMethod = PaymentMethod.CASH) -> list[tuple[str, int]]:
    with site.session() as session, session.begin():
        unit = session.get(Unit, site.unit_id)
        assert unit is not None
        receipt = counter_payment(session, site.clerk, unit, amount_fen, method)
        return [(a.period, a.amount_fen) for a in receipt.allocations]


def owed(site: Books, bill_id: int) -> int:
    with site.session() as session:
        return bill_balance(session, bill_id).outstanding_fen


def test_a_payment_covering_several_bills_settles_the_oldest_first(site: Books) -> None:
    march = site.bill("2026-03", 4_000, date(2026, 4, 10))
    january = site.bill("2026-01", 3_000, date(2026, 2, 10))
    february = site.bill("2026-02", 5_000, date(2026, 3, 10))
    assert pay(site, 9_000) == [("2026-01", 3_000), ("2026-02", 5_000), ("2026-03", 1_000)]
    assert (owed(site, january), owed(site, february), owed(site, march)) == (0, 0, 3_000)


def test_a_part_payment_leaves_the_rest_outstanding(site: Books) -> None:
    bill = site.bill("2026-01", 3_000, date(2026, 2, 10))
    assert pay(site, 1_200, PaymentMethod.CARD) == [("2026-01", 1_200)]
    assert owed(site, bill) == 1_800
    with site.session() as session:
        assert unit_balance(session, site.unit_id).net_fen == 1_800


def test_an_overpayment_becomes_credit_that_the_next_bill_consumes(site: Books) -> None:
    site.bill("2026-01", 3_000, date(2026, 2, 10))
    pay(site, 5_000, PaymentMethod.TRANSFER)
    with site.session() as session:
        assert credit_fen(session, site.unit_id) == 2_000
        assert unit_balance(session, site.unit_id).net_fen == -2_000
    february = site.bill("2026-02", 2_500, date(2026, 3, 10))
    with site.session() as session, session.begin():
        assert [a.amount_fen for a in apply_credit(session, site.unit_id)] == [2_000]
    assert owed(site, february) == 500
    with site.session() as session:
        assert credit_fen(session, site.unit_id) == 0


def test_another_units_bills_are_not_touched(site: Books) -> None:
    theirs = site.bill("2025-12", 3_000, date(2026, 1, 10), unit_id=site.other_unit_id)
    pay(site, 1_000)
    assert owed(site, theirs) == 3_000


def test_the_receipt_number_names_the_site_and_local_day(site: Books) -> None:
    with site.session() as session, session.begin():
        unit = session.get(Unit, site.unit_id)
        assert unit is not None
        receipt = counter_payment(session, site.clerk, unit, 100, PaymentMethod.CASH)
    assert receipt.receipt_no.startswith(f"{site.site_code}-20")
    assert receipt.receipt_no.endswith(f"-{receipt.payment_id:06d}")


def test_bad_counter_payments_are_refused_with_what_to_fix(site: Books) -> None:
    cases = [
        (0, PaymentMethod.CASH, "between 1 and"),
        (-5, PaymentMethod.CASH, "between 1 and"),
        (100, PaymentMethod.ONLINE, "online payments come through the provider"),
    ]
    for amount, method, message in cases:
        with site.session() as session, session.begin(), pytest.raises(UserError, match=message):
            unit = session.get(Unit, site.unit_id)
            assert unit is not None
            counter_payment(session, site.clerk, unit, amount, method)
    with site.session() as session:
        assert credit_fen(session, site.unit_id) == 0
