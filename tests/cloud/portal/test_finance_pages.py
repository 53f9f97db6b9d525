"""Finance pages: tariffs and their versions, bill runs with preview, diff and progress, the approval queue,
and the collection report with CSV and XLSX downloads; for finance and admin staff of the site only."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any

from fastapi.routing import APIRoute
from openpyxl import load_workbook
from sqlalchemy import select

from cloud.audit.models import AuditEntry
from cloud.audit.services import Actor
from cloud.auth.models import User
from cloud.billing.ledger import create_entry
from cloud.billing.models import Bill, BillRun, EntryKind, EntryState, LedgerEntry, RunState, Tariff, TariffVersion
from cloud.billing.pages import router as finance_router
from cloud.billing.readings import correct_reading
from cloud.db import session_factory
from cloud.registry.models import Meter
from tests.cloud.portal.conftest import Portal, signed_in
from tests.cloud.portal.metered import PERIOD, PERIOD_END, RUN_AT, run_bills, seed_billing


def _tariff(portal: Portal, code: str) -> tuple[int, dict[str, Any]]:
    """A tariff's id and its first version's document."""
    with session_factory(portal.hub.engine)() as session:
        tariff = session.scalars(select(Tariff).where(Tariff.code == code)).one()
        return tariff.id, tariff.versions[0].document


def test_finance_pages_are_for_finance_and_admin_staff_only(portal: Portal) -> None:
    seed_billing(portal.hub.engine)
    paths = [r.path for r in finance_router.routes if isinstance(r, APIRoute) and "{" not in r.path]
    assert {"/console/finance/tariffs", "/console/finance/runs", "/console/finance/approvals",
            "/console/finance/collection", "/console/finance/collection.csv"} <= set(paths)  # fmt: skip
    for name in ("owner_a", "engineer_x", "guard_x"):
        client = signed_in(portal, name)
        for path in paths:
            assert client.get(path).status_code == 403, (name, path)
    for name in ("finance_x", "admin"):
        client = signed_in(portal, name)
        for path in paths:
            assert client.get(path).status_code == 200, (name, path)
    assert signed_in(portal, "finance_x").get("/console/").text.count('href="/console/finance/runs"') == 1
    tariff_id, _ = _tariff(portal, "elec-sh")
    other_site = signed_in(portal, "engineer_y")
    assert other_site.post(f"/console/finance/tariffs/{tariff_id}/versions", data={}).status_code == 403


def test_tariff_versions_are_listed_a_wrong_one_is_explained_and_a_right_one_created(portal: Portal) -> None:
    seed_billing(portal.hub.engine)
    client = signed_in(portal, "finance_x")
    tariff_id, first = _tariff(portal, "elec-sh")
    url = f"/console/finance/tariffs/{tariff_id}/versions"
    cases = {
        ("2026-13-01", "{}"): "effective_from: \"2026-13-01\" is not a date; write it as YYYY-MM-DD",
        ("2026-07-01", "{not json"): "document: not valid JSON at line 1, column 2",
        ("2026-07-01", json.dumps(first | {"tiers": [{"up_to": "100", "tou": {"peak": 0.6, "valley": "0.3"}}, {"tou": {"peak": "0.7", "valley": "0.4"}}]})):
            "write 0.6 as a string",
        ("2026-01-01", json.dumps(first)): "has a version effective 2026-01-01 already",
    }  # fmt: skip
    for (effective_from, document), message in cases.items():
        response = client.post(url, data={"effective_from": effective_from, "document": document})
        assert response.status_code == 422, message
        error = re.search(r'data-testid="form-error">([^<]*)<', response.text)
        assert error is not None and message in error.group(1).replace("&#34;", '"'), error
        assert document.replace('"', "&#34;") in response.text, "the typed document is kept for correcting"
    with session_factory(portal.hub.engine)() as session:
        versions = session.scalars(select(TariffVersion).where(TariffVersion.tariff_id == tariff_id)).all()
        assert len(versions) == 1, "a refused form saves nothing"
    page = client.get("/console/finance/tariffs").text
    assert "居民电价" in page and "2026-01-01" in page and "上海居民阶梯峰谷电价" in page
    document = json.loads(json.dumps(first))
    document["tiers"][0]["tou"]["peak"] = "0.627"
    created = client.post(f"/console/finance/tariffs/{tariff_id}/versions",
                          data={"effective_from": "2026-07-01", "document": json.dumps(document)})  # fmt: skip
    assert created.status_code == 200 and "新版本已创建" in created.text
    with session_factory(portal.hub.engine)() as session:
        versions = session.scalars(select(TariffVersion).where(TariffVersion.tariff_id == tariff_id)).all()
        assert [str(v.effective_from) for v in versions] == ["2026-01-01", "2026-07-01"]
        assert versions[1].document["tiers"][0]["tou"]["peak"] == "0.627"
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "tariff_version").order_by(AuditEntry.id)
        ).all()
        assert [a.actor for a in audit][-1] == "finance_x"


def test_a_run_that_cannot_start_says_why_a_preview_shows_the_bills_to_come_and_issuing_writes_them(
    portal: Portal,
) -> None:
    client = signed_in(portal, "finance_x")
    site_x = portal.ids["site_x"]
    for period, message in (("2026-2", "is not a month; write it as YYYY-MM"),
                            ("2099-01", "bills can be issued after it ended")):  # fmt: skip
        response = client.post("/console/finance/runs", data={"site_id": site_x, "period": period, "issue": "true"})
        assert response.status_code == 422 and message in response.text
    assert (
        client.post("/console/finance/runs", data={"site_id": portal.ids["site_y"], "period": PERIOD}).status_code
        == 404
    )
    with session_factory(portal.hub.engine)() as session:
        assert session.scalars(select(BillRun).where(BillRun.period != "2026-03")).all() == [], "no run recorded"
    seed_billing(portal.hub.engine)
    started = client.post("/console/finance/runs", data={"site_id": site_x, "period": PERIOD, "issue": "false"},
                          follow_redirects=False)  # fmt: skip
    assert started.status_code == 303
    run_url = started.headers["location"]
    progress = client.get(f"{run_url}/progress.json").json()
    assert progress == {"state": "previewed", "units_done": 48, "units_total": 48, "error": None}
    page = client.get(run_url).text
    assert "已预览" in page and 'data-testid="new-bills">48<' in page and "没有与已出账单不同的房屋" in page
    assert "1-0101" in page and "电费 第一档 峰" in page
    with session_factory(portal.hub.engine)() as session:
        assert session.scalars(select(Bill).where(Bill.period == PERIOD)).all() == [], "a preview writes no bill"
    issued = client.post("/console/finance/runs", data={"site_id": site_x, "period": PERIOD, "issue": "true"})
    assert issued.status_code == 200 and "已出账" in issued.text and 'data-testid="bills-issued">48<' in issued.text
    again = client.post("/console/finance/runs", data={"site_id": site_x, "period": PERIOD, "issue": "false"})
    assert 'data-testid="new-bills">0<' in again.text and "没有与已出账单不同的房屋" in again.text
    with session_factory(portal.hub.engine)() as session:
        assert len(session.scalars(select(Bill).where(Bill.period == PERIOD)).all()) == 48


def test_a_corrected_reading_shows_in_the_preview_diff_and_becomes_a_correction_on_the_owners_bill(
    portal: Portal,
) -> None:
    seed_billing(portal.hub.engine)
    assert run_bills(portal.hub.engine, issue=True).state is RunState.ISSUED
    with session_factory(portal.hub.engine).begin() as session:
        meter = session.scalars(select(Meter).where(Meter.code == "WM-B1-U01")).one()
        correct_reading(session, Actor("finance_x"), meter, PERIOD_END, Decimal("57.96"), "抄表核对，表码应为57.96",
                        Decimal("56.96"), now=RUN_AT)  # fmt: skip
    run = run_bills(portal.hub.engine, issue=False)
    page = signed_in(portal, "finance_x").get(f"/console/finance/runs/{run.id}").text
    assert page.count('data-testid="diff-row"') == 1 and 'data-testid="changed-bills">1<' in page
    row = page.split('data-testid="diff-row"')[1].split("</tr>")[0]
    assert "1-0101" in row and "¥403.09" in row and "¥408.09" in row and "¥5.00" in row, "1 m³ more at 5 yuan"
    run_bills(portal.hub.engine, issue=True)
    with session_factory(portal.hub.engine)() as session:
        bill_id = session.scalars(
            select(Bill.id).where(Bill.unit_id == portal.ids["unit_a"], Bill.period == PERIOD)
        ).one()
    owner_view = signed_in(portal, "owner_a").get(f"/portal/bills/{bill_id}").text
    entries = owner_view.split('data-testid="entries"')[1].split('data-testid="totals"')[0]
    assert 'data-kind="correction"' in entries and "¥5.00" in entries and "57.96" in entries
    assert "更正前: 6.72 · ¥13.91\n    → 更正后: 7.72 · ¥15.98" in entries, (
        "each correction line says what the charge was and is"
    )
    assert 'data-testid="outstanding">¥408.09<' in owner_view


def test_approval_queue_a_waiver_takes_effect_only_when_someone_else_approves(portal: Portal) -> None:
    seed_billing(portal.hub.engine)
    run_bills(portal.hub.engine, issue=True)
    with session_factory(portal.hub.engine).begin() as session:
        bill = session.scalars(select(Bill).where(Bill.unit_id == portal.ids["unit_a"], Bill.period == PERIOD)).one()
        clerk = session.get(User, portal.hub.users["finance_x"].id)
        assert clerk is not None
        entry = create_entry(session, clerk, bill.id, EntryKind.WAIVER, "水管爆裂漏水，减免部分水费", 500)
        entry_id, bill_id = entry.id, bill.id
    own = signed_in(portal, "finance_x")
    queue = own.get("/console/finance/approvals").text
    assert "水管爆裂漏水" in queue and "本人发起，需他人审批" in queue and 'data-testid="approve"' not in queue
    refused = own.post(f"/console/finance/approvals/{entry_id}", data={"decision": "approve"})
    assert refused.status_code == 422 and "you created this entry" in refused.text
    rejected_without_reason = signed_in(portal, "admin_x").post(f"/console/finance/approvals/{entry_id}",
                                                                  data={"decision": "reject"})  # fmt: skip
    assert rejected_without_reason.status_code == 422 and "say why" in rejected_without_reason.text
    with session_factory(portal.hub.engine)() as session:
        assert session.get(LedgerEntry, entry_id).state is EntryState.PENDING  # type: ignore[union-attr]
    owner_view = signed_in(portal, "owner_a").get(f"/portal/bills/{bill_id}").text
    assert "减免" not in owner_view.split('data-testid="totals"')[0], "a pending waiver is not on the bill"
    approved = signed_in(portal, "admin_x").post(f"/console/finance/approvals/{entry_id}",
                                                 data={"decision": "approve", "comment": "核实属实"})  # fmt: skip
    assert approved.status_code == 200 and "没有待审批的事项" in approved.text
    owner_view = signed_in(portal, "owner_a").get(f"/portal/bills/{bill_id}").text
    assert 'data-kind="waiver"' in owner_view and "-¥5.00" in owner_view and "水管爆裂漏水" in owner_view
    with session_factory(portal.hub.engine)() as session:
        actors = [a.actor for a in session.scalars(select(AuditEntry).where(AuditEntry.entity == "ledger_entry"))]
        assert actors == ["finance_x", "admin_x"]


def test_collection_report_with_csv_and_xlsx_downloads(portal: Portal) -> None:
    seed_billing(portal.hub.engine)
    run_bills(portal.hub.engine, issue=True)
    client = signed_in(portal, "finance_x")
    query = f"site_id={portal.ids['site_x']}&period_from=2026-01&period_to=2026-03"
    page = client.get(f"/console/finance/collection?{query}").text
    assert "2026-02" in page and "合计" in page and "应收(元)" in page
    assert f"/console/finance/collection.csv?{query.replace('&', '&amp;')}" in page
    csv = client.get(f"/console/finance/collection.csv?{query}")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[1].startswith("账期,账单数,应收(元)") and lines[2].startswith("2026-02,48,")
    xlsx = client.get(f"/console/finance/collection.xlsx?{query}&lang=en")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and sheet["A2"].value == "Period" and sheet["B3"].value == 48
    assert client.get(f"/console/finance/collection?site_id={portal.ids['site_y']}").status_code == 404
    bad = client.get(f"/console/finance/collection?site_id={portal.ids['site_x']}&period_from=2026-3")
    assert bad.status_code == 422
