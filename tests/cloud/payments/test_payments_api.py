"""Payments over HTTP: the cashier's counter, online payment with the demo provider, and the signed webhook.

The demo provider is a mock (no real payment provider is reachable here): its checkout page is served by the
hub and it posts the webhook back through the test client instead of over a network socket.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from cloud.audit.models import AuditEntry
from cloud.payments.models import IntentState, Payment, PaymentAllocation, PaymentIntent
from cloud.payments.providers import SIGNATURE_HEADER, DemoProvider
from cloud.registry.models import Site
from cloud.settings import DEV_PAYMENT_SECRET
from tests.cloud.billing.ledger.bill_factory import Api, Books, books

SECRET = DEV_PAYMENT_SECRET.encode()
WEBHOOK = "/api/v1/payments/webhook/demo"
DUE = date(2026, 4, 10)


def tables(site: Books) -> dict[str, Any]:
    """Everything a payment for this site could change."""
    with site.session() as session:
        mine = Payment.site_id == site.site_id
        return {
            "payments": tuple(session.execute(select(func.count(), func.sum(Payment.amount_fen)).where(mine)).one()),
            "allocations": tuple(
                session.execute(
                    select(func.count(), func.sum(PaymentAllocation.amount_fen))
                    .join(Payment, Payment.id == PaymentAllocation.payment_id)
                    .where(mine)
                ).one()
            ),
            "intents": sorted(
                session.execute(
                    select(PaymentIntent.id, PaymentIntent.state).where(PaymentIntent.site_id == site.site_id)
                ).all()
            ),
            "audit": session.scalar(select(func.count()).where(AuditEntry.site_id == site.site_id)),
        }


def start_intent(api: Api, site: Books, bill_ids: list[int]) -> dict[str, Any]:
    answer = api.post(site.owner, "/api/v1/payments/intents", json={"bill_ids": bill_ids, "return_url": "/console/"})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def post_webhook(api: Api, body: dict[str, Any], secret: bytes = SECRET) -> Any:
    raw = json.dumps(body).encode()
    return api.client.post(WEBHOOK, content=raw, headers={SIGNATURE_HEADER: DemoProvider(secret).sign(raw)})


def test_the_cashier_takes_money_at_the_counter_and_the_owner_sees_the_receipt(api: Api, site: Books) -> None:
    jan = site.bill("2026-01", 3_000, DUE)
    feb = site.bill("2026-02", 5_000, DUE)
    answer = api.post(site.clerk, "/api/v1/payments/counter",
                      json={"unit_id": site.unit_id, "amount_fen": 10_000, "method": "cash"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    receipt = answer.json()
    assert [(a["bill_id"], a["amount_fen"]) for a in receipt["allocations"]] == [(jan, 3_000), (feb, 5_000)]
    assert receipt["credit_fen"] == 2_000
    assert receipt["receipt_no"].startswith(f"{site.site_code}-")
    assert api.get(site.owner, f"/api/v1/payments/{receipt['payment_id']}/receipt").json() == receipt
    assert api.get(site.owner, f"/api/v1/payments/units/{site.unit_id}").json()["credit_fen"] == 2_000
    statement = api.get(site.owner, f"/api/v1/billing/units/{site.unit_id}/statement").json()
    assert (statement["outstanding_fen"], statement["credit_fen"], statement["net_fen"]) == (0, 2_000, -2_000)


def test_an_owner_pays_online_with_the_demo_provider_and_the_bills_are_settled(
    api: Api, site: Books, monkeypatch: pytest.MonkeyPatch
) -> None:
    def through_client(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        answer = api.client.post(url, content=body, headers=headers)
        return answer.status_code, answer.text

    monkeypatch.setattr(api.app.state, "payment_providers", {"demo": DemoProvider(SECRET, sender=through_client)},
                        raising=False)  # fmt: skip
    jan = site.bill("2026-01", 3_000, DUE)
    feb = site.bill("2026-02", 5_050, DUE)
    intent = start_intent(api, site, [feb, jan])
    assert (intent["amount_fen"], intent["bill_ids"], intent["state"]) == (8_050, [jan, feb], "pending")
    assert intent["checkout_url"] == f"http://testserver/pay/demo/{intent['reference']}"

    page = api.client.get(f"/pay/demo/{intent['reference']}")
    assert page.status_code == 200
    with site.session() as session:
        merchant = session.scalars(select(Site.name).where(Site.id == site.site_id)).one()
    assert "确认支付" in page.text and "¥80.50" in page.text and merchant in page.text
    done = api.client.post(f"/pay/demo/{intent['reference']}/confirm", follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/console/?paid={intent['reference']}"

    assert api.get(site.owner, f"/api/v1/payments/intents/{intent['reference']}").json()["state"] == "paid"
    statement = api.get(site.owner, f"/api/v1/billing/units/{site.unit_id}/statement").json()
    assert [(b["paid_fen"], b["outstanding_fen"]) for b in statement["bills"]] == [(3_000, 0), (5_050, 0)]
    assert [p["method"] for p in statement["payments"]] == ["online"]


def test_an_owner_cannot_see_pay_or_print_another_units_bill(api: Api, site: Books) -> None:
    theirs = site.bill("2026-01", 3_000, DUE, unit_id=site.other_unit_id)
    answer = api.post(site.owner, "/api/v1/payments/intents", json={"bill_ids": [theirs]})
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"bill {theirs} not found"
    assert api.get(site.owner, f"/api/v1/billing/bills/{theirs}/balance").status_code == 404
    assert api.get(site.owner, f"/api/v1/billing/bills/{theirs}/print").status_code == 404
    assert api.get(site.owner, f"/api/v1/billing/units/{site.other_unit_id}/statement").status_code == 404
    assert api.get(site.clerk, f"/api/v1/billing/bills/{theirs}/print").status_code == 200


def test_finance_staff_see_and_take_payments_only_for_their_sites(api: Api, site: Books) -> None:
    elsewhere = books(site.engine)
    bill = elsewhere.bill("2026-01", 3_000, DUE)
    body = {"unit_id": elsewhere.unit_id, "amount_fen": 100, "method": "cash"}
    assert api.post(site.clerk, "/api/v1/payments/counter", json=body).status_code == 404
    assert api.post(site.owner, "/api/v1/payments/counter", json=body).status_code == 403
    assert api.get(site.clerk, f"/api/v1/billing/bills/{bill}/print").status_code == 404
    assert api.get(site.clerk, f"/api/v1/billing/sites/{elsewhere.site_id}/collection",
                   params={"period_from": "2026-01", "period_to": "2026-01"}).status_code == 404  # fmt: skip
    assert api.post(elsewhere.clerk, "/api/v1/payments/counter", json=body).status_code == 201
    cheque = api.post(site.clerk, "/api/v1/payments/counter", json=body | {"unit_id": site.unit_id, "method": "cheque"})
    assert cheque.status_code == 422
    assert "'cash', 'card', 'transfer' or 'online'" in cheque.text


def test_a_webhook_with_a_bad_signature_is_rejected_and_changes_nothing(api: Api, site: Books) -> None:
    intent = start_intent(api, site, [site.bill("2026-01", 3_000, DUE)])
    before = tables(site)
    body = {"intent": intent["reference"], "txn_id": "T-1", "amount_fen": 3_000, "currency": "CNY"}
    forged = post_webhook(api, body, secret=b"not-the-secret")
    assert forged.status_code == 401
    assert forged.json()["detail"] == "webhook signature missing or wrong (header X-EH-Signature)"
    raw = json.dumps(body).encode()
    signature = DemoProvider(SECRET).sign(raw)
    tampered = api.client.post(WEBHOOK, content=raw.replace(b"3000", b"300"), headers={SIGNATURE_HEADER: signature})
    assert tampered.status_code == 401
    assert api.client.post(WEBHOOK, content=raw).status_code == 401
    assert tables(site) == before


def test_a_replayed_transaction_answers_the_original_result_and_changes_nothing(api: Api, site: Books) -> None:
    intent = start_intent(api, site, [site.bill("2026-01", 3_000, DUE)])
    body = {"intent": intent["reference"], "txn_id": f"T-{intent['reference']}", "amount_fen": 3_000, "currency": "CNY"}
    first = post_webhook(api, body)
    assert first.status_code == 200, first.text
    after_first = tables(site)
    replay = post_webhook(api, body)
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert tables(site) == after_first
    second_txn = post_webhook(api, body | {"txn_id": f"U-{intent['reference']}"})
    assert second_txn.status_code == 409
    assert tables(site) == after_first


def test_a_webhook_with_a_wrong_amount_or_currency_is_rejected_and_changes_nothing(api: Api, site: Books) -> None:
    intent = start_intent(api, site, [site.bill("2026-01", 3_000, DUE)])
    before = tables(site)
    body = {"intent": intent["reference"], "txn_id": f"T-{intent['reference']}", "amount_fen": 2_999, "currency": "CNY"}
    wrong_amount = post_webhook(api, body)
    assert wrong_amount.status_code == 422
    assert wrong_amount.json()["detail"] == "amount 2999 fen does not match the intent's 3000 fen"
    wrong_currency = post_webhook(api, body | {"amount_fen": 3_000, "currency": "USD"})
    assert wrong_currency.status_code == 422
    assert wrong_currency.json()["detail"] == "currency USD does not match the intent's CNY"
    assert post_webhook(api, body | {"intent": "no-such-intent", "amount_fen": 3_000}).status_code == 404
    assert tables(site) == before
    with site.session() as session:
        state = session.scalars(select(PaymentIntent.state).where(PaymentIntent.reference == intent["reference"]))
        assert state.one() is IntentState.PENDING
