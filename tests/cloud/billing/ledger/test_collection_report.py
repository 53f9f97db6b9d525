"""The collection report of a hand-made site matches figures computed by hand, and its CSV and XLSX exports
carry the same figures; the printable bill shows every line and the totals."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

from openpyxl import load_workbook

from cloud.billing.dues import run_dues
from cloud.billing.ledger import approve, create_entry
from cloud.billing.models import EntryKind
from cloud.billing.reports import collection_csv, collection_report, collection_xlsx
from cloud.payments.models import PaymentMethod
from cloud.payments.services import counter_payment
from cloud.registry.models import Site, Unit
from tests.cloud.billing.ledger.bill_factory import Api, Books

AS_OF = date(2026, 4, 15)


def hand_made(site: Books) -> None:
    """January: A 10000 (paid 10000), B 8000 (waived 2000, paid 3000). February: A 6000 (paid 1000 + 2000
    adjustment), B 4000 (nothing paid, due after AS_OF)."""
    site.bill("2026-01", 10_000, date(2026, 2, 10))
    b_jan = site.bill("2026-01", 8_000, date(2026, 2, 10), unit_id=site.other_unit_id)
    a_feb = site.bill("2026-02", 6_000, date(2026, 3, 10))
    site.bill("2026-02", 4_000, date(2026, 4, 20), unit_id=site.other_unit_id)
    with site.session() as session, session.begin():
        waiver = create_entry(session, site.clerk, b_jan, EntryKind.WAIVER, "困难户", 2_000).id
        adjustment = create_entry(session, site.clerk, a_feb, EntryKind.ADJUSTMENT, "补收", 2_000).id
    with site.session() as session, session.begin():
        approve(session, site.approver, waiver)
        approve(session, site.approver, adjustment)
    with site.session() as session, session.begin():
        a, b = session.get(Unit, site.unit_id), session.get(Unit, site.other_unit_id)
        assert a is not None and b is not None
        counter_payment(session, site.clerk, a, 11_000, PaymentMethod.CASH)
        counter_payment(session, site.clerk, b, 3_000, PaymentMethod.CASH)


def test_the_collection_report_matches_hand_computed_figures(site: Books) -> None:
    hand_made(site)
    with site.session() as session:
        s = session.get(Site, site.site_id)
        assert s is not None
        report = collection_report(session, s, "2026-01", "2026-02", AS_OF)
    jan, feb = report.rows
    # receivable, waived, received, outstanding, overdue
    assert (jan.bills, jan.receivable_fen, jan.waived_fen, jan.received_fen, jan.outstanding_fen, jan.overdue_fen) == (
        2, 18_000, 2_000, 13_000, 3_000, 3_000)  # fmt: skip
    assert (feb.bills, feb.receivable_fen, feb.waived_fen, feb.received_fen, feb.outstanding_fen, feb.overdue_fen) == (
        2, 12_000, 0, 1_000, 11_000, 7_000)  # fmt: skip
    assert jan.rate_percent == Decimal("81.25")  # 13000 / 16000
    assert feb.rate_percent == Decimal("8.33")  # 1000 / 12000
    total = report.total
    assert (total.receivable_fen, total.waived_fen, total.received_fen, total.overdue_fen) == (
        30_000,
        2_000,
        14_000,
        10_000,
    )
    assert total.rate_percent == Decimal("50.00")  # 14000 / 28000

    rows = list(csv.reader(io.StringIO(collection_csv(report, "zh-CN").decode("utf-8-sig"))))
    assert rows[1] == ["账期", "账单数", "应收(元)", "减免(元)", "实收(元)", "未收(元)", "逾期(元)", "收缴率(%)"]
    assert rows[2] == ["2026-01", "2", "180.00", "20.00", "130.00", "30.00", "30.00", "81.25"]
    assert rows[4] == ["合计", "4", "300.00", "20.00", "140.00", "140.00", "100.00", "50.00"]

    sheet = load_workbook(io.BytesIO(collection_xlsx(report, "en"))).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert values[0][:3] == ["Period", "Bills", "Receivable (yuan)"]
    assert values[1] == ["2026-01", 2, 180, 20, 130, 30, 30, 81.25]
    assert values[3] == ["Total", 4, 300, 20, 140, 140, 100, 50]


def test_collection_report_and_exports_over_http(api: Api, site: Books) -> None:
    site.bill("2026-01", 12_345, date(2026, 2, 10))
    params = {"period_from": "2026-01", "period_to": "2026-03", "as_of": "2026-04-01"}
    url = f"/api/v1/billing/sites/{site.site_id}/collection"
    report = api.get(site.clerk, url, params=params)
    assert report.status_code == 200, report.text
    assert report.json()["total"]["overdue_fen"] == 12_345
    as_csv = api.get(site.clerk, url + ".csv", params=params)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "123.45" in as_csv.content.decode("utf-8-sig")
    sheet = load_workbook(io.BytesIO(api.get(site.clerk, url + ".xlsx", params=params).content)).active
    assert sheet is not None and sheet.cell(3, 3).value == 123.45
    assert api.get(site.owner, url, params=params).status_code == 403
    bad = api.get(site.clerk, url, params=params | {"period_from": "2026-13"})
    assert bad.status_code == 422 and "period_from" in bad.text


def test_the_printable_bill_shows_every_line_and_what_is_outstanding(api: Api, site: Books) -> None:
    bill = site.bill("2026-01", 12_345, date(2026, 2, 10))
    with site.session() as session, session.begin():
        run_dues(session, datetime(2026, 2, 11, 4, tzinfo=UTC), site_id=site.site_id)  # one day's fee: 6 fen
    page = api.get(site.owner, f"/api/v1/billing/bills/{bill}/print")
    assert page.status_code == 200
    for text in (f"{site.site_code}-202601-1-0101", "缴费通知单", "电费 第一档", "起 1000.0", "止 1100.0", "档位 1",
                 "123.45", "滞纳金", "0.06", "123.51"):  # fmt: skip
        assert text in page.text, text
