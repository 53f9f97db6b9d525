"""Two hub processes handling money for the same unit at the same moment never apply the same fen twice.

Threads with their own sessions stand in for processes. PostgreSQL makes the second wait on the row locks. SQLite
has no row locks: the second writer is refused (the write lock, or the unique transaction id) and changes nothing;
the caller retries, as a provider redelivers a webhook answered 503.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from cloud.billing.balances import bill_balance, credit_fen
from cloud.billing.models import Bill
from cloud.payments.models import Payment, PaymentMethod
from cloud.payments.services import ProviderPayment, counter_payment, create_intent, online_payment
from cloud.registry.models import Unit
from tests.cloud.billing.ledger.bill_factory import Books


def together(site: Books, work: Callable[[], object], times: int = 2) -> list[object]:
    """Run ``work`` in ``times`` threads released at once; each retries what SQLite refuses."""
    barrier = threading.Barrier(times)
    results: list[object] = []

    def run() -> None:
        barrier.wait()
        for _ in range(20):
            try:
                results.append(work())
                return
            except (OperationalError, IntegrityError):
                continue

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_cashiers_paying_one_bill_at_once_apply_it_once(site: Books) -> None:
    bill = site.bill("2026-01", 8_000, date(2026, 2, 10))

    def pay() -> object:
        with site.session() as session, session.begin():
            unit = session.get(Unit, site.unit_id)
            assert unit is not None
            return counter_payment(session, site.clerk, unit, 5_000, PaymentMethod.CASH)

    assert len(together(site, pay)) == 2
    with site.session() as session:
        assert bill_balance(session, bill).paid_fen == 8_000
        assert credit_fen(session, site.unit_id) == 2_000


def test_a_webhook_delivered_twice_at_once_records_one_payment(site: Books) -> None:
    bill_id = site.bill("2026-01", 3_000, date(2026, 2, 10))
    with site.session() as session, session.begin():
        bill = session.get(Bill, bill_id)
        assert bill is not None
        reference = create_intent(session, site.owner, site.unit_id, [bill], "demo", "/console/").reference
    paid = ProviderPayment("demo", reference, f"T-{reference}", 3_000, "CNY")

    def deliver() -> object:
        with site.session() as session, session.begin():
            return online_payment(session, paid)[0].payment_id

    assert len(set(together(site, deliver))) == 1
    with site.session() as session:
        assert session.scalar(select(func.count()).where(Payment.unit_id == site.unit_id)) == 1
        assert bill_balance(session, bill_id).outstanding_fen == 0
