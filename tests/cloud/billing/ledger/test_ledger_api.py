"""The ledger over HTTP: finance creates, someone else approves from the queue; admins set the site's rules."""

from __future__ import annotations

from datetime import date

from tests.cloud.billing.ledger.bill_factory import Api, Books

DUE = date(2026, 3, 20)


def test_a_waiver_goes_through_the_approval_queue(api: Api, site: Books) -> None:
    bill = site.bill("2026-02", 12_000, DUE)
    created = api.post(site.clerk, f"/api/v1/billing/bills/{bill}/entries",
                       json={"kind": "waiver", "amount_fen": 2_000, "reason": "漏水减免"})  # fmt: skip
    assert created.status_code == 201, created.text
    entry = created.json()
    assert (entry["state"], entry["amount_fen"]) == ("pending", -2_000)

    mine = api.get(site.clerk, "/api/v1/billing/approvals", params={"site_id": site.site_id}).json()
    theirs = api.get(site.approver, "/api/v1/billing/approvals", params={"site_id": site.site_id}).json()
    assert [(e["id"], e["can_decide"]) for e in mine] == [(entry["id"], False)]
    assert [(e["id"], e["can_decide"]) for e in theirs] == [(entry["id"], True)]

    own = api.post(site.clerk, f"/api/v1/billing/entries/{entry['id']}/approve", json={})
    assert own.status_code == 403
    assert own.json()["detail"] == "you created this entry: someone else must approve or reject it"
    assert api.get(site.owner, f"/api/v1/billing/bills/{bill}/balance").json()["outstanding_fen"] == 12_000

    approved = api.post(site.approver, f"/api/v1/billing/entries/{entry['id']}/approve", json={"comment": "同意"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "effective"
    assert api.get(site.owner, f"/api/v1/billing/bills/{bill}/balance").json()["outstanding_fen"] == 10_000
    assert api.get(site.approver, "/api/v1/billing/approvals", params={"site_id": site.site_id}).json() == []


def test_only_finance_creates_entries_and_a_rejection_needs_a_reason(api: Api, site: Books) -> None:
    bill = site.bill("2026-02", 12_000, DUE)
    body = {"kind": "adjustment", "amount_fen": 500, "reason": "补收"}
    assert api.post(site.owner, f"/api/v1/billing/bills/{bill}/entries", json=body).status_code == 403
    entry = api.post(site.clerk, f"/api/v1/billing/bills/{bill}/entries", json=body).json()
    silent = api.post(site.approver, f"/api/v1/billing/entries/{entry['id']}/reject", json={})
    assert silent.status_code == 422
    assert "say why" in silent.json()["detail"]
    rejected = api.post(site.approver, f"/api/v1/billing/entries/{entry['id']}/reject", json={"comment": "无依据"})
    assert rejected.json()["state"] == "rejected"


def test_admins_set_late_fee_rules_and_approval_levels(api: Api, site: Books) -> None:
    url = f"/api/v1/billing/sites/{site.site_id}/policy"
    policy = {"late_fee_daily_rate": "0.0003", "late_fee_cap_rate": "0.5", "late_fee_cap_fen": None,
              "reminder_days_before": 5}  # fmt: skip
    assert api.client.put(url, json=policy, headers=api.headers(site.clerk)).status_code == 403
    saved = api.client.put(url, json=policy, headers=api.headers(site.second_approver))
    assert saved.status_code == 200, saved.text
    assert api.get(site.clerk, url).json()["reminder_days_before"] == 5
    too_high = api.client.put(
        url, json=policy | {"late_fee_daily_rate": "0.5"}, headers=api.headers(site.second_approver)
    )
    assert too_high.status_code == 422 and "late_fee_daily_rate" in too_high.text

    rules = {"rules": [{"kind": "waiver", "min_amount_fen": 50_000, "levels": 2}]}
    rules_url = f"/api/v1/billing/sites/{site.site_id}/approval-rules"
    assert api.client.put(rules_url, json=rules, headers=api.headers(site.second_approver)).status_code == 200
    bill = site.bill("2026-02", 90_000, DUE)
    entry = api.post(site.clerk, f"/api/v1/billing/bills/{bill}/entries",
                     json={"kind": "waiver", "amount_fen": 60_000, "reason": "困难户"}).json()  # fmt: skip
    assert entry["approvals_required"] == 2
