"""Payments API: the cashier's counter, online payment intents, a unit's payments and receipts; and the demo
provider's hosted checkout page (``/pay/demo/...``), which stands in for a real provider's site."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from cloud.api.deps import API_PREFIX, CurrentUser, ScopeDep, SessionDep, UnitDep, require_roles
from cloud.auth.models import Role
from cloud.billing.balances import credit_fen
from cloud.billing.models import Bill
from cloud.billing.money import yuan
from cloud.console.pages import render
from cloud.payments.models import IntentState, Payment, PaymentIntent, PaymentMethod
from cloud.payments.providers import DemoProvider
from cloud.payments.services import Receipt, counter_payment, create_intent, receipt
from cloud.payments.webhook import provider_named
from cloud.registry.models import Site, Unit

router = APIRouter(prefix="/payments", tags=["payments"])
checkout_router = APIRouter(prefix="/pay/demo", include_in_schema=False)
CASHIERS = (Role.FINANCE, Role.ADMIN)


class CounterPayment(BaseModel):
    unit_id: int
    amount_fen: int = Field(gt=0, description="Money received, in fen.")
    method: PaymentMethod
    note: str = Field(default="", max_length=500)


class IntentCreate(BaseModel):
    bill_ids: list[int] = Field(min_length=1, max_length=120)
    provider: str = "demo"
    return_url: str = Field(default="/console/", max_length=500)


class IntentOut(BaseModel):
    reference: str
    unit_id: int
    amount_fen: int
    currency: str
    bill_ids: list[int]
    state: IntentState
    checkout_url: str
    paid_at: datetime | None


class PaymentOut(BaseModel):
    id: int
    receipt_no: str
    amount_fen: int
    method: PaymentMethod
    received_at: datetime


class UnitPayments(BaseModel):
    unit_id: int
    credit_fen: int
    payments: list[PaymentOut]


@router.post("/counter", dependencies=[Depends(require_roles(*CASHIERS))], status_code=status.HTTP_201_CREATED)
def pay_at_counter(body: CounterPayment, session: SessionDep, scope: ScopeDep, user: CurrentUser) -> Receipt:
    """Money taken at the counter for a unit: pays its oldest bills first, the rest is prepaid credit."""
    unit = scope.get(session, Unit, body.unit_id)
    return counter_payment(session, user, unit, body.amount_fen, body.method, body.note)


@router.get("/units/{unit_id}")
def unit_payments(unit: UnitDep, session: SessionDep) -> UnitPayments:
    rows = session.scalars(select(Payment).where(Payment.unit_id == unit.id).order_by(Payment.received_at.desc()))
    payments = [PaymentOut(id=p.id, receipt_no=p.receipt_no, amount_fen=p.amount_fen, method=p.method,
                           received_at=p.received_at) for p in rows]  # fmt: skip
    return UnitPayments(unit_id=unit.id, credit_fen=credit_fen(session, unit.id), payments=payments)


@router.get("/{payment_id}/receipt")
def payment_receipt(payment_id: int, session: SessionDep, scope: ScopeDep) -> Receipt:
    return receipt(session, scope.get(session, Payment, payment_id))


def _intent_out(request: Request, intent: PaymentIntent) -> IntentOut:
    url = provider_named(request, intent.provider).checkout_url(intent, str(request.base_url))
    return IntentOut(
        reference=intent.reference, unit_id=intent.unit_id, amount_fen=intent.amount_fen, currency=intent.currency,
        bill_ids=intent.bill_ids, state=intent.state, checkout_url=url, paid_at=intent.paid_at,
    )  # fmt: skip


@router.post(
    "/intents",
    dependencies=[Depends(require_roles(Role.OWNER, *CASHIERS))],
    status_code=status.HTTP_201_CREATED,
)
def start_online_payment(
    body: IntentCreate, request: Request, session: SessionDep, scope: ScopeDep, user: CurrentUser
) -> IntentOut:
    """Pay bills online: answers the provider's checkout URL to send the payer to. Owners pay only their own."""
    provider_named(request, body.provider)
    bills = [scope.get(session, Bill, bill_id) for bill_id in dict.fromkeys(body.bill_ids)]
    intent = create_intent(session, user, bills[0].unit_id, bills, body.provider, body.return_url)
    return _intent_out(request, intent)


def _scoped_intent(reference: str, session: SessionDep, scope: ScopeDep) -> PaymentIntent:
    intent = session.scalar(
        select(PaymentIntent).where(PaymentIntent.reference == reference, scope.where(PaymentIntent))
    )
    if intent is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"payment intent {reference} not found")
    return intent


@router.get("/intents/{reference}")
def intent_state(request: Request, intent: Annotated[PaymentIntent, Depends(_scoped_intent)]) -> IntentOut:
    """Whether an online payment has arrived (the portal polls this after the payer returns)."""
    return _intent_out(request, intent)


def _demo_intent(request: Request, reference: str) -> tuple[PaymentIntent, str]:
    """The intent and its merchant (site) name, read in a short transaction of its own: confirming calls the
    hub's webhook, which must not wait on a transaction this request holds open."""
    with request.app.state.sessions.begin() as session:
        found = session.execute(
            select(PaymentIntent, Site.name)
            .join(Site, Site.id == PaymentIntent.site_id)
            .where(PaymentIntent.reference == reference, PaymentIntent.provider == DemoProvider.name)
        ).first()
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such payment: the link is wrong or expired")
        session.expunge(found[0])
        return found[0], found[1]


@checkout_router.get("/{reference}")
def demo_checkout(request: Request, reference: str) -> HTMLResponse:
    """The demo provider's checkout page: amount, merchant, and a 确认支付 button."""
    intent, merchant = _demo_intent(request, reference)
    return render(request, "bill_pay_demo.html", None, intent=intent, merchant=merchant, error=None, yuan=yuan)


@checkout_router.post("/{reference}/confirm")
def demo_confirm(request: Request, reference: str) -> Response:
    """The payer confirmed: the provider reports the payment to the hub's webhook over HTTP, then sends the
    payer back to where they came from."""
    intent, merchant = _demo_intent(request, reference)
    if intent.state is not IntentState.PAID:
        provider = provider_named(request, DemoProvider.name)
        assert isinstance(provider, DemoProvider)
        webhook_url = f"{str(request.base_url).rstrip('/')}{API_PREFIX}/payments/webhook/{DemoProvider.name}"
        code, text = provider.confirm(intent, webhook_url)
        if code != status.HTTP_200_OK:
            response = render(
                request, "bill_pay_demo.html", None, intent=intent, merchant=merchant, error=text, yuan=yuan
            )
            response.status_code = status.HTTP_502_BAD_GATEWAY
            return response
    separator = "&" if "?" in intent.return_url else "?"
    return RedirectResponse(f"{intent.return_url}{separator}paid={intent.reference}", status.HTTP_303_SEE_OTHER)
