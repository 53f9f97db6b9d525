"""Owner portal pages (``/portal/``): my units, monthly usage, bills with every line, paying online, history.

Owners sign in on the console's sign-in page (same cookie). Every row is read through the owner's scope, so
another owner's unit, bill or payment answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.deps import SessionDep
from cloud.auth.models import Role, User
from cloud.auth.services import UserError
from cloud.billing.balances import bill_balance, credit_fen
from cloud.billing.dues import local_day
from cloud.billing.models import Bill
from cloud.console.pages import PageScope
from cloud.payments.models import IntentState, Payment, PaymentIntent
from cloud.payments.providers import DemoProvider
from cloud.payments.services import create_intent
from cloud.payments.webhook import provider_named
from cloud.portal.common import page_roles, render_money
from cloud.portal.views import bill_payments, bill_rows, bill_status, entry_views, line_views, payment_rows
from cloud.registry.models import Meter, Site, Unit

router = APIRouter(prefix="/portal", include_in_schema=False)
Owner = Annotated[User, Depends(page_roles(Role.OWNER))]


@router.get("/")
def home(request: Request, session: SessionDep, user: Owner, scope: PageScope) -> HTMLResponse:
    units = session.scalars(select(Unit).where(scope.where(Unit)).order_by(Unit.code)).all()
    sites = dict(session.execute(select(Site.id, Site.name).where(scope.where(Site))).all())
    bills = bill_rows(session, local_day(datetime.now(UTC)), scope.where(Bill))
    return render_money(request, "portal_home.html", user, units=units, sites=sites, bills=bills)


@router.get("/units/{unit_id}")
def unit_page(request: Request, unit_id: int, session: SessionDep, user: Owner, scope: PageScope) -> HTMLResponse:
    unit = scope.get(session, Unit, unit_id)
    meters = session.scalars(
        select(Meter).where(Meter.unit_id == unit.id, scope.where(Meter)).order_by(Meter.kind, Meter.code)
    ).all()
    bills = bill_rows(session, local_day(datetime.now(UTC)), Bill.unit_id == unit.id, scope.where(Bill))
    return render_money(
        request, "portal_unit.html", user, unit=unit, meters=meters, bills=bills, credit=credit_fen(session, unit.id)
    )


def _bill_page(request: Request, session: Session, bill: Bill, user: User, error: str | None) -> HTMLResponse:
    balance = bill_balance(session, bill.id)
    unit = session.get(Unit, bill.unit_id)
    paid_ref = request.query_params.get("paid")
    pending = None
    if paid_ref and not balance.settled:
        pending = session.scalar(
            select(PaymentIntent).where(
                PaymentIntent.reference == paid_ref,
                PaymentIntent.unit_id == bill.unit_id,
                PaymentIntent.state == IntentState.PENDING,
            )
        )
    response = render_money(
        request, "portal_bill.html", user, bill=bill, unit=unit, balance=balance,
        status=bill_status(balance, local_day(datetime.now(UTC))), lines=line_views(session, bill.lines),
        entries=entry_views(session, bill), payments=bill_payments(session, bill), pending=pending, error=error,
    )  # fmt: skip
    if error:
        response.status_code = status.HTTP_409_CONFLICT
    return response


@router.get("/bills/{bill_id}")
def bill_page(request: Request, bill_id: int, session: SessionDep, user: Owner, scope: PageScope) -> HTMLResponse:
    return _bill_page(request, session, scope.get(session, Bill, bill_id), user, None)


@router.post("/bills/{bill_id}/pay")
def pay_bill(request: Request, bill_id: int, session: SessionDep, user: Owner, scope: PageScope) -> Response:
    """去支付: start a payment of what the bill owes with the demo provider and send the owner to its checkout;
    the provider brings them back to the bill."""
    bill = scope.get(session, Bill, bill_id)
    provider = provider_named(request, DemoProvider.name)
    try:
        with session.begin_nested():
            intent = create_intent(session, user, bill.unit_id, [bill], provider.name, f"/portal/bills/{bill.id}")
    except UserError as exc:
        return _bill_page(request, session, bill, user, str(exc))
    return RedirectResponse(provider.checkout_url(intent, str(request.base_url)), status.HTTP_303_SEE_OTHER)


@router.get("/payments")
def payments_page(request: Request, session: SessionDep, user: Owner, scope: PageScope) -> HTMLResponse:
    payments = session.scalars(
        select(Payment).where(scope.where(Payment)).order_by(Payment.received_at.desc(), Payment.id.desc())
    ).all()
    units = dict(session.execute(select(Unit.id, Unit.code).where(scope.where(Unit))).all())
    return render_money(request, "portal_payments.html", user, rows=payment_rows(session, payments), units=units)
