"""The providers' webhook: the only way an online payment is recorded.

Authenticated by the provider's signature, not by a user. Idempotent by the provider's transaction id: a
replay answers 200 with the receipt of the first delivery and changes nothing; a payment whose amount or
currency differs from its intent is refused and changes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlalchemy.exc import IntegrityError, OperationalError

from cloud.api.deps import SessionDep
from cloud.payments.providers import InvalidWebhook, PaymentProvider, default_providers
from cloud.payments.services import Receipt, online_payment

router = APIRouter(prefix="/payments", tags=["payments"])


def providers(request: Request) -> dict[str, PaymentProvider]:
    """The app's providers: set on ``app.state.payment_providers`` (tests), else the defaults from settings."""
    state = request.app.state
    if getattr(state, "payment_providers", None) is None:
        state.payment_providers = default_providers(state.settings.payment_webhook_secret.get_secret_value())
    found: dict[str, PaymentProvider] = state.payment_providers
    return found


def provider_named(request: Request, name: str) -> PaymentProvider:
    provider = providers(request).get(name)
    if provider is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no payment provider {name!r}")
    return provider


async def raw_body(request: Request) -> bytes:
    """The body exactly as sent: the signature covers these bytes, not a re-serialisation."""
    return await request.body()


@router.post("/webhook/{provider}")
def webhook(provider: str, request: Request, session: SessionDep, body: Annotated[bytes, Depends(raw_body)]) -> Receipt:
    """Record the payment a provider reports (signature checked in constant time)."""
    try:
        paid = provider_named(request, provider).verify(body, request.headers)
    except InvalidWebhook as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    try:
        result, _first = online_payment(session, paid)
        session.flush()
    except (IntegrityError, OperationalError):
        # SQLite has no row locks: a second delivery racing the first hits the unique transaction id or the
        # write lock. Nothing was recorded by this one; the provider's redelivery gets the original receipt.
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "this payment is being recorded by another delivery; retry",
            headers={"Retry-After": "1"},
        ) from None  # fmt: skip
    return result
