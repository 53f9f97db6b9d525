"""Online payment providers: the interface the hub needs, and a demo provider.

A provider turns an intent into a checkout URL the payer is sent to, and later tells the hub, by a signed
webhook, that the payment went through. The hub only trusts what ``verify`` accepts.

``DemoProvider`` stands in for a real one (no real payment provider is reachable here): its checkout page is
served by the hub itself (``/pay/demo/{reference}``) and, when the payer confirms, it posts the webhook to
the hub over HTTP, signed with HMAC-SHA256 exactly as a provider would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloud.payments.models import PaymentIntent
from cloud.payments.services import ProviderPayment

SIGNATURE_HEADER = "X-EH-Signature"
WEBHOOK_TIMEOUT_S = 10.0

Sender = Callable[[str, bytes, dict[str, str]], tuple[int, str]]
"""Posts a body with headers to a URL; answers the status code and response text."""


class InvalidWebhook(Exception):
    """The webhook is not from the provider (bad or missing signature) or not understood."""


class PaymentProvider(Protocol):
    name: str

    def checkout_url(self, intent: PaymentIntent, base_url: str) -> str:
        """Where to send the payer (a real provider registers the order with its API here)."""
        ...

    def verify(self, body: bytes, headers: Mapping[str, str]) -> ProviderPayment:
        """The payment a webhook reports, if it is authentic; ``InvalidWebhook`` otherwise."""
        ...


class DemoWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intent: str = Field(min_length=1, max_length=40)
    txn_id: str = Field(min_length=1, max_length=100)
    amount_fen: int
    currency: str = Field(min_length=3, max_length=3)


def http_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:  # noqa: S310 (our own URL)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class DemoProvider:
    name = "demo"

    def __init__(self, secret: bytes, sender: Sender = http_post) -> None:
        self._secret = secret
        self._send = sender

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def checkout_url(self, intent: PaymentIntent, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/pay/demo/{intent.reference}"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> ProviderPayment:
        given = headers.get(SIGNATURE_HEADER.lower()) or headers.get(SIGNATURE_HEADER) or ""
        if not hmac.compare_digest(given.encode(), self.sign(body).encode()):
            raise InvalidWebhook(f"webhook signature missing or wrong (header {SIGNATURE_HEADER})")
        try:
            event = DemoWebhook.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidWebhook(f"webhook body not understood: {exc.errors()[0]['msg']}") from None
        return ProviderPayment(self.name, event.intent, event.txn_id, event.amount_fen, event.currency)

    def confirm(self, intent: PaymentIntent, webhook_url: str) -> tuple[int, str]:
        """What the provider does when the payer presses 确认支付: report the payment to the hub."""
        body = json.dumps(
            {"intent": intent.reference, "txn_id": f"demo-{secrets.token_hex(12)}", "amount_fen": intent.amount_fen,
             "currency": intent.currency}
        ).encode()  # fmt: skip
        return self._send(webhook_url, body, {"Content-Type": "application/json", SIGNATURE_HEADER: self.sign(body)})


def default_providers(webhook_secret: str) -> dict[str, PaymentProvider]:
    return {DemoProvider.name: DemoProvider(webhook_secret.encode())}
