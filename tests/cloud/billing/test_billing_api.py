"""Billing API on the seeded hub: tariffs (engine validation), a run issued over HTTP, who sees which bill,
reading imports with a per-row report, and audited corrections."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from sqlalchemy import func, select

from cloud.audit.models import AuditEntry
from cloud.audit.services import Actor
from cloud.billing.demo import SHANGHAI_ELECTRICITY, seed_demo_billing
from cloud.billing.models import MeterReading, ReadingCorrection
from tests.cloud.api.hub_app import Hub

API = "/api/v1/billing"


def post(hub: Hub, user: str, url: str, **kwargs: Any) -> Any:
    return hub.client.post(url, headers=hub.headers(user), **kwargs)


def issue_march(hub: Hub) -> dict[str, Any]:
    with hub.session() as session, session.begin():
        seed_demo_billing(session, Actor("seed"))
    started = post(hub, "finance_x", f"{API}/sites/{hub.ids['site_x']}/runs", json={"period": "2026-03", "issue": True})
    assert started.status_code == 202, started.text
    run = hub.get("finance_x", f"{API}/runs/{started.json()['id']}").json()
    assert run["state"] == "issued", run["error"]
    assert run["units_done"] == run["units_total"] == 48
    return run


def test_a_bad_tariff_document_is_rejected_with_the_engines_message(sqlite_hub: Hub) -> None:
    hub = sqlite_hub
    site = hub.ids["site_x"]
    bad = dict(
        SHANGHAI_ELECTRICITY,
        tiers=[
            {"up_to": "3120", "tou": {"peak": "0.617", "valley": "0.307"}},
            {"up_to": "2000", "tou": {"peak": "0.677", "valley": "0.337"}},
            {"tou": {"peak": "0.977", "valley": "0.487"}},
        ],
    )
    body = {"code": "elec", "name": "电价", "kind": "electricity", "effective_from": "2026-01-01", "document": bad}
    refused = post(hub, "finance_x", f"{API}/sites/{site}/tariffs", json=body)
    assert refused.status_code == 422
    assert "tier thresholds must increase" in refused.json()["detail"]
    floats = dict(SHANGHAI_ELECTRICITY, tiers=[{"tou": {"peak": 0.617, "valley": "0.307"}}])
    refused = post(hub, "finance_x", f"{API}/sites/{site}/tariffs", json=body | {"document": floats})
    assert refused.status_code == 422 and "floats lose exact decimal values" in refused.json()["detail"]
    assert post(hub, "engineer_x", f"{API}/sites/{site}/tariffs", json=body).status_code == 403
    created = post(hub, "finance_x", f"{API}/sites/{site}/tariffs", json=body | {"document": SHANGHAI_ELECTRICITY})
    assert created.status_code == 201, created.text
    tariff = created.json()
    again = post(
        hub,
        "finance_x",
        f"{API}/tariffs/{tariff['id']}/versions",
        json={"effective_from": "2026-01-01", "document": SHANGHAI_ELECTRICITY},
    )
    assert again.status_code == 409 and "never edited" in again.json()["detail"]
    assert hub.get("engineer_y", f"{API}/tariffs/{tariff['id']}").status_code == 404


def test_owners_see_only_their_bills_and_staff_only_their_sites(hub: Hub) -> None:
    run = issue_march(hub)
    assert run["summary"]["bills_issued"] == 48
    own = hub.get("owner_a", f"{API}/bills").json()
    assert [b["unit_id"] for b in own] == [hub.ids["unit_a"]]
    bill = hub.get("owner_a", f"{API}/bills/{own[0]['id']}").json()
    energy = [line for line in bill["lines"] if line["kind"] == "energy"]
    assert energy and all(line["detail"]["readings"]["start"]["estimated"] for line in energy)
    others = hub.get("owner_b", f"{API}/bills").json()
    assert hub.get("owner_a", f"{API}/bills/{others[0]['id']}").status_code == 404
    assert len(hub.get("finance_x", f"{API}/bills", params={"period": "2026-03"}).json()) == 48
    assert hub.get("engineer_y", f"{API}/bills").json() == []
    assert hub.get("engineer_y", f"{API}/bills/{own[0]['id']}").status_code == 404
    assert post(hub, "owner_a", f"{API}/sites/{hub.ids['site_x']}/runs", json={"period": "2026-03"}).status_code == 403
    assert hub.get("owner_a", f"{API}/runs/{run['id']}").status_code == 403


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_reading_file_with_a_bad_row_stores_nothing_and_says_what_to_fix(sqlite_hub: Hub) -> None:
    hub = sqlite_hub
    url = f"{API}/sites/{hub.ids['site_x']}/readings/import"
    csv = (
        "meter,read_at,value\nWM-B1-U02,2026-03-01 08:00,12.5\nWM-NOPE,2026-03-01 08:00,3\n"
        "WM-B1-U03,yesterday,4\nWM-B1-U04,2026-03-01 08:00,-2\n"
    )
    refused = post(hub, "engineer_x", url, files={"file": ("march.csv", csv.encode(), "text/csv")})
    assert refused.status_code == 422
    assert [(e["row"], e["column"]) for e in refused.json()["detail"]] == [(3, "meter"), (4, "read_at"), (5, "value")]
    assert "no meter 'WM-NOPE'" in refused.json()["detail"][0]["message"]
    book = _xlsx(
        [["meter", "read_at", "value"], ["WM-B1-U02", "2026-03-01 08:00", 12.5], ["WM-B1-U02", "2026-03-31 08:00", 11]]
    )
    refused = post(hub, "engineer_x", url, files={"file": ("march.xlsx", book, "application/octet-stream")})
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "row": 3,
            "column": "value",
            "message": "11 is lower than row 2 (12.5); check the value, or record a meter replacement first",
        }
    ]
    with hub.session() as session:
        assert session.scalar(select(func.count()).select_from(MeterReading)) == 0
    good = _xlsx(
        [
            ["Meter", "Read_at", "Value"],
            ["WM-B1-U02", "2026-03-01 08:00", 12.5],
            ["WM-B1-U02", "2026-03-31 08:00", 19.25],
        ]
    )
    stored = post(hub, "engineer_x", url, files={"file": ("march.xlsx", good, "application/octet-stream")})
    assert stored.status_code == 201 and stored.json() == {"stored": 2}
    assert post(hub, "guard_x", url, files={"file": ("m.csv", b"meter,read_at,value\n", "text/csv")}).status_code == 403


def test_a_reading_changes_only_through_an_audited_correction(hub: Hub) -> None:
    meter = hub.ids["water_b"]
    with hub.session() as session:
        from cloud.registry.models import Meter

        water = session.get(Meter, meter)
        assert water is not None
    added = post(
        hub,
        "engineer_x",
        f"{API}/meters/{meter}/readings",
        json={"read_at": "2026-03-31T16:00:00+00:00", "value": "88.5"},
    )
    assert added.status_code == 201, added.text
    url = f"{API}/meters/{meter}/corrections"
    at = "2026-03-31T16:00:00+00:00"
    assert post(hub, "finance_x", url, json={"read_at": at, "value": "85.5", "reason": ""}).status_code == 422
    assert post(hub, "engineer_x", url, json={"read_at": at, "value": "85.5", "reason": "typo"}).status_code == 403
    fixed = post(hub, "finance_x", url, json={"read_at": at, "value": "85.5", "reason": "digits swapped"})
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["old_value"] == "88.5000" and fixed.json()["new_value"] == "85.5000"
    assert (
        hub.client.put(f"{API}/meters/{meter}/readings", headers=hub.headers("finance_x"), json={}).status_code == 405
    )
    with hub.session() as session:
        correction = session.scalars(select(ReadingCorrection)).one()
        entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "meter_reading")).one()
    assert correction.reason == "digits swapped" and correction.corrected_by == hub.users["finance_x"].id
    assert entry.actor == "finance_x" and entry.before is not None and entry.after is not None
    assert (entry.before["value"], entry.after["value"], entry.after["reason"]) == (
        "88.5000",
        "85.5000",
        "digits swapped",
    )
    listed = hub.get("finance_x", f"{API}/meters/{meter}/readings").json()
    assert listed["readings"][0]["value"] == "88.5000"  # the reading itself is kept as entered
    assert listed["corrections"][0]["new_value"] == "85.5000"
