"""Recording payments and settling bills with them.

Settlement is one rule wherever money comes from: the unit's oldest unpaid bill is paid first, a part payment
leaves the rest outstanding, and money left over is prepaid credit that the next bills consume. Bills are
row-locked (in id order) while money is applied, so two hub processes never allocate the same fen twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session

from cloud.audit.services import Actor, Change, record
from cloud.auth.models import User
from cloud.auth.services import UserError
from cloud.billing.balances import credit_fen, outstanding_bills
from cloud.billing.models import Bill
from cloud.payments.models import CURRENCY, IntentState, Payment, PaymentAllocation, PaymentIntent, PaymentMethod
from cloud.registry.models import Site, Unit
from cloud.timeseries.query import DEFAULT_TZ

COUNTER_METHODS = (PaymentMethod.CASH, PaymentMethod.CARD, PaymentMethod.TRANSFER)
MAX_PAYMENT_FEN = 1_000_000_00
"""One million yuan: a larger counter payment is a typing error."""


@dataclass(frozen=True)
class AllocationLine:
    bill_id: int
    bill_number: str
    period: str
    amount_fen: int


@dataclass(frozen=True)
class Receipt:
    """What a payment did: printed for the owner at the counter, answered to a (replayed) webhook."""

    payment_id: int
    receipt_no: str
    unit_id: int
    amount_fen: int
    method: PaymentMethod
    received_at: datetime
    allocations: list[AllocationLine]
    """Every bill this payment has settled (in part), including credit consumed by later bills."""
    credit_fen: int
    """The unit's prepaid credit after the payment."""


def _applied() -> Subquery:
    return (
        select(PaymentAllocation.payment_id, func.sum(PaymentAllocation.amount_fen).label("applied"))
        .group_by(PaymentAllocation.payment_id)
        .subquery()
    )


def _unallocated(session: Session, unit_id: int) -> list[tuple[Payment, int]]:
    """The unit's payments with money not yet applied, oldest first, and how much of each is left."""
    applied = _applied()
    rows = session.execute(
        select(Payment, Payment.amount_fen - func.coalesce(applied.c.applied, 0))
        .outerjoin(applied, applied.c.payment_id == Payment.id)
        .where(Payment.unit_id == unit_id, Payment.amount_fen > func.coalesce(applied.c.applied, 0))
        .order_by(Payment.received_at, Payment.id)
    )
    return [(payment, int(left)) for payment, left in rows]


def units_with_credit(session: Session, site_id: int | None = None) -> list[int]:
    """Units holding money not yet applied to a bill (all sites, or one)."""
    applied = _applied()
    stmt = (
        select(Payment.unit_id)
        .outerjoin(applied, applied.c.payment_id == Payment.id)
        .where(Payment.amount_fen > func.coalesce(applied.c.applied, 0))
        .distinct()
    )
    if site_id is not None:
        stmt = stmt.where(Payment.site_id == site_id)
    return sorted(session.scalars(stmt))


def _lock_bills(session: Session, bill_ids: Sequence[int]) -> None:
    if bill_ids:
        session.execute(select(Bill.id).where(Bill.id.in_(sorted(bill_ids))).order_by(Bill.id).with_for_update())


def apply_credit(
    session: Session, unit_id: int, now: datetime | None = None, first: Sequence[int] = ()
) -> list[PaymentAllocation]:
    """Apply the unit's unallocated money to its unpaid bills: the bills in ``first`` (oldest first), then every
    other unpaid bill, oldest first. Bill runs call this after issuing, so credit pays the new bill."""
    now = now or datetime.now(UTC)
    candidates = outstanding_bills(session, unit_id)
    _lock_bills(session, [b.bill_id for b in candidates])
    bills = outstanding_bills(session, unit_id)  # again, under the locks: another process may have paid some
    preferred = set(first)
    bills.sort(key=lambda b: (b.bill_id not in preferred, b.period, b.bill_id))
    made: list[PaymentAllocation] = []
    money = _unallocated(session, unit_id) if bills else []
    for bill in bills:
        owed = bill.outstanding_fen
        while owed > 0 and money:
            payment, left = money[0]
            take = min(owed, left)
            made.append(PaymentAllocation(payment_id=payment.id, bill_id=bill.bill_id, amount_fen=take, at=now))
            owed -= take
            money[0] = (payment, left - take)
            if left == take:
                money.pop(0)
    session.add_all(made)
    session.flush()
    return made


def receipt(session: Session, payment: Payment) -> Receipt:
    lines = session.execute(
        select(PaymentAllocation.bill_id, Bill.number, Bill.period, func.sum(PaymentAllocation.amount_fen))
        .join(Bill, Bill.id == PaymentAllocation.bill_id)
        .where(PaymentAllocation.payment_id == payment.id)
        .group_by(PaymentAllocation.bill_id, Bill.number, Bill.period)
        .order_by(Bill.period, PaymentAllocation.bill_id)
    )
    return Receipt(
        payment.id, payment.receipt_no, payment.unit_id, payment.amount_fen, payment.method, payment.received_at,
        [AllocationLine(b, n, p, int(a)) for b, n, p, a in lines], credit_fen(session, payment.unit_id),
    )  # fmt: skip


def _new_payment(session: Session, unit: Unit, amount_fen: int, method: PaymentMethod, now: datetime,
                 **fields: object) -> Payment:  # fmt: skip
    site_code = session.scalar(select(Site.code).where(Site.id == unit.site_id))
    payment = Payment(
        site_id=unit.site_id, unit_id=unit.id, amount_fen=amount_fen, method=method,
        receipt_no=f"pending-{secrets.token_hex(8)}", received_at=now, **fields,
    )  # fmt: skip
    session.add(payment)
    session.flush()
    payment.receipt_no = f"{site_code}-{now.astimezone(ZoneInfo(DEFAULT_TZ)):%Y%m%d}-{payment.id:06d}"
    session.flush()
    return payment


def _audit(session: Session, actor: Actor, payment: Payment, result: Receipt, now: datetime) -> None:
    after = {
        "unit_id": payment.unit_id, "amount_fen": payment.amount_fen, "method": payment.method,
        "receipt_no": payment.receipt_no, "provider_txn_id": payment.provider_txn_id,
        "allocations": {str(a.bill_id): a.amount_fen for a in result.allocations}, "credit_fen": result.credit_fen,
    }  # fmt: skip
    label = f"payment {payment.receipt_no}: {payment.amount_fen} fen"
    record(session, actor, [Change("create", "payment", payment.id, label, None, after, payment.site_id)], now)


def counter_payment(
    session: Session,
    cashier: User,
    unit: Unit,
    amount_fen: int,
    method: PaymentMethod,
    note: str = "",
    now: datetime | None = None,
) -> Receipt:
    """Money taken at the counter: settles the unit's oldest unpaid bills first, the rest becomes credit."""
    now = now or datetime.now(UTC)
    if method not in COUNTER_METHODS:
        names = ", ".join(m.value for m in COUNTER_METHODS)
        raise UserError(f"a counter payment is made by {names}; online payments come through the provider")
    if not 0 < amount_fen <= MAX_PAYMENT_FEN:
        raise UserError(f"the amount must be between 1 and {MAX_PAYMENT_FEN} fen, not {amount_fen}")
    payment = _new_payment(session, unit, amount_fen, method, now, received_by=cashier.id, note=note.strip())
    apply_credit(session, unit.id, now)
    result = receipt(session, payment)
    _audit(session, Actor(cashier.username, cashier.id), payment, result, now)
    return result


def create_intent(
    session: Session, user: User, unit_id: int, bills: Sequence[Bill], provider: str, return_url: str,
    now: datetime | None = None,
) -> PaymentIntent:  # fmt: skip
    """An online payment for these bills (already checked to be the user's), for what they owe now."""
    now = now or datetime.now(UTC)
    if not bills:
        raise UserError("choose at least one bill to pay")
    if any(b.unit_id != unit_id for b in bills):
        raise UserError("one online payment pays bills of one unit; pay each unit's bills separately")
    if not return_url.startswith("/") or return_url.startswith("//"):
        raise UserError("return_url must be a path on this hub, such as /console/")
    owing = outstanding_bills(session, unit_id, [b.id for b in bills])
    paid = sorted({b.number for b in bills} - {b.number for b in bills if b.id in {o.bill_id for o in owing}})
    if paid:
        raise UserError(f"nothing is owed on {', '.join(paid)}: leave it out", 409)
    intent = PaymentIntent(
        reference=secrets.token_urlsafe(18), site_id=bills[0].site_id, unit_id=unit_id, provider=provider,
        amount_fen=sum(o.outstanding_fen for o in owing), currency=CURRENCY, bill_ids=[o.bill_id for o in owing],
        return_url=return_url, state=IntentState.PENDING, created_by=user.id, created_at=now,
    )  # fmt: skip
    session.add(intent)
    session.flush()
    return intent


@dataclass(frozen=True)
class ProviderPayment:
    """A payment the provider reports (its webhook, verified)."""

    provider: str
    intent: str
    txn_id: str
    amount_fen: int
    currency: str


def online_payment(session: Session, paid: ProviderPayment, now: datetime | None = None) -> tuple[Receipt, bool]:
    """Record a provider's payment once: ``(receipt, True)`` the first time, ``(the same receipt, False)`` when
    the same transaction is reported again. The intent row is locked first, so concurrent deliveries queue."""
    now = now or datetime.now(UTC)
    intent = session.scalar(
        select(PaymentIntent)
        .where(PaymentIntent.reference == paid.intent, PaymentIntent.provider == paid.provider)
        .with_for_update()
    )
    if intent is None:
        raise UserError(f"no {paid.provider} payment intent {paid.intent}", 404)
    earlier = session.scalar(
        select(Payment).where(Payment.provider == paid.provider, Payment.provider_txn_id == paid.txn_id)
    )
    if earlier is not None:
        if earlier.intent_id != intent.id:
            raise UserError(f"transaction {paid.txn_id} paid another intent", 409)
        return receipt(session, earlier), False
    if intent.state is IntentState.PAID:
        raise UserError(f"intent {intent.reference} was paid by another transaction", 409)
    if paid.currency != intent.currency:
        raise UserError(f"currency {paid.currency} does not match the intent's {intent.currency}", 422)
    if paid.amount_fen != intent.amount_fen:
        raise UserError(f"amount {paid.amount_fen} fen does not match the intent's {intent.amount_fen} fen", 422)
    unit = session.get(Unit, intent.unit_id)
    assert unit is not None  # a foreign key
    payment = _new_payment(
        session, unit, paid.amount_fen, PaymentMethod.ONLINE, now, provider=paid.provider, provider_txn_id=paid.txn_id,
        intent_id=intent.id, note="",
    )  # fmt: skip
    intent.state = IntentState.PAID
    intent.paid_at = now
    apply_credit(session, unit.id, now, first=intent.bill_ids)
    result = receipt(session, payment)
    _audit(session, Actor(f"provider:{paid.provider}"), payment, result, now)
    return result, True
