"""Owner portal: an owner's units, usage and bills with every line checkable by hand, paying with the demo
provider, payment history; and never anything of another owner's (404, as if it did not exist)."""

from __future__ import annotations

import re
from datetime import date

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud.auth.models import User
from cloud.billing.models import Bill
from cloud.db import session_factory
from cloud.payments.models import PaymentIntent, PaymentMethod
from cloud.payments.services import counter_payment
from cloud.portal.pages import router as portal_router
from cloud.registry.models import Unit
from tests.cloud.api.hub_app import PASSWORD
from tests.cloud.portal.bills import issue_bill
from tests.cloud.portal.conftest import Portal, signed_in


def test_the_portal_is_for_signed_in_owners_who_find_it_after_signing_in(portal: Portal) -> None:
    anonymous = TestClient(portal.hub.app).get(f"/portal/bills/{portal.bill_a}", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/console/login"
    staff = signed_in(portal, "finance_x").get("/portal/")
    assert staff.status_code == 403 and "owner" in staff.json()["detail"]
    client = TestClient(portal.hub.app)
    username = portal.hub.users["owner_a"].username
    signed = client.post("/console/login", data={"username": username, "password": PASSWORD})
    assert signed.status_code == 200 and 'href="/portal/"' in signed.text and "我的账单" in signed.text
    assert "demo-site-202603-1-0101" in client.get("/portal/").text


def test_home_lists_my_units_and_bills_with_their_status(portal: Portal) -> None:
    page = signed_in(portal, "owner_a").get("/portal/")
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert "1-0101" in page.text and "2-0101" not in page.text and "Y-0101" not in page.text
    assert "demo-site-202603-1-0101" in page.text and "待支付" in page.text
    assert "demo-site-202603-2-0101" not in page.text
    with session_factory(portal.hub.engine).begin() as session:
        bill = issue_bill(session, portal.ids["unit_a"], "2026-01", date(2026, 2, 15))
    client = signed_in(portal, "owner_a")
    assert "已逾期" in client.get(f"/portal/bills/{bill.id}").text
    assert "已逾期" in client.get("/portal/").text
    with session_factory(portal.hub.engine).begin() as session:
        cashier = session.get(User, portal.hub.users["finance_x"].id)
        unit = session.get(Unit, portal.ids["unit_a"])
        assert cashier is not None and unit is not None
        counter_payment(session, cashier, unit, bill.total_fen + 1000, PaymentMethod.CASH)  # the oldest bill first
    home = client.get("/portal/").text
    march = home.split('data-testid="bill-demo-site-202603-1-0101"')[1].split("</a>")[0]
    assert "部分已付" in march and 'data-testid="bill-outstanding">¥' in march
    january = home.split('data-testid="bill-demo-site-202601-1-0101"')[1].split("</a>")[0]
    assert "已结清" in january and 'data-testid="bill-outstanding">¥0.00<' in january


def test_bill_page_shows_each_line_with_readings_usage_price_and_amount(portal: Portal) -> None:
    page = signed_in(portal, "owner_a").get(f"/portal/bills/{portal.bill_a}")
    assert page.status_code == 200
    text = page.text
    for expected in (
        "电费 第一档 峰",
        "电费 第一档 谷",
        "公摊 电梯用电（按面积）",
        "损耗 1号楼总表（按用量）",
        "垃圾处理费",
        "EM-B1-U01",
    ):
        assert expected in text, expected
    assert '起始读数 <span data-testid="reading-start">1200.5</span>' in text
    assert '结束读数 <span data-testid="reading-end">1480.25</span>' in text
    assert "2026-03-01 00:00" in text and "2026-04-01 00:00" in text, "reading times in Asia/Shanghai"
    assert "峰" in text and "谷" in text and "本年此前累计 512" in text and "按年累计" in text
    assert "分摊依据: 按面积 89.50 / 2148.00" in text and "分摊依据: 按用量 279.75 / 11250.00" in text
    assert "11378.7 − 11250 (24) = 128.7" in text, "the loss is the master minus its sub-meters"
    quantities = re.findall(r'data-testid="line-quantity">([\d.]+)<', text)
    prices = re.findall(r'data-testid="line-price">([\d.]+)<', text)
    assert quantities[:2] == ["190.25", "89.5"] and prices[:2] == ["0.568", "0.288"]
    assert "¥108.06" in text and "¥25.78" in text, "190.25 x 0.568 and 89.5 x 0.288, rounded to the fen"
    with session_factory(portal.hub.engine)() as session:
        bill = session.get(Bill, portal.bill_a)
        assert bill is not None
        total = bill.total_fen
    assert f'data-testid="total">¥{total // 100}.{total % 100:02d}<' in text
    assert f'data-testid="outstanding">¥{total // 100}.{total % 100:02d}<' in text
    assert 'data-testid="pay"' in text and "去支付" in text and "估算" not in text
    text = signed_in(portal, "owner_a").get(f"/portal/bills/{portal.bill_a}?lang=en").text
    assert '<html lang="en">' in text and "Start reading" in text and "Outstanding" in text and "Unpaid" in text
    with session_factory(portal.hub.engine).begin() as session:
        bill = issue_bill(session, portal.ids["unit_a"], "2026-04", date(2099, 1, 1), estimated_end=True)
    text = signed_in(portal, "owner_a").get(f"/portal/bills/{bill.id}").text
    assert text.count('data-testid="estimated"') == 2, "the end reading of both electricity lines"
    assert "估算" in text


def test_unit_page_has_a_monthly_usage_chart_per_meter_and_the_units_bills(portal: Portal) -> None:
    client = signed_in(portal, "owner_a")
    text = client.get(f"/portal/units/{portal.ids['unit_a']}").text
    assert f'data-meter="{portal.ids["meter_a"]}"' in text and "portal.js" in text
    assert "demo-site-202603-1-0101" in text
    usage = client.get(f"/console/meters/{portal.ids['meter_a']}/usage.json?bucket=month")
    assert usage.status_code == 200 and usage.json()["unit"] == "kWh", "the chart's data, scoped to the owner"


def test_owner_a_cannot_open_or_pay_anything_of_owner_b(portal: Portal) -> None:
    """Every portal route with an id in its path, called by owner A with owner B's ids (same site) and with
    another site's: 404, as if it did not exist."""
    client = signed_in(portal, "owner_a")
    for foreign in ({"unit_id": portal.ids["unit_b"], "bill_id": portal.bill_b},
                    {"unit_id": portal.ids["unit_y"], "bill_id": portal.bill_y}):  # fmt: skip
        checked = []
        for route in portal_router.routes:
            assert isinstance(route, APIRoute)
            names = re.findall(r"{(\w+)}", route.path)
            if not names:
                continue
            path = route.path.format(**{n: foreign[n] for n in names})  # a new path parameter: add it above
            for method in route.methods:
                response = client.request(method, path, follow_redirects=False)
                assert response.status_code == 404, f"{method} {path}"
                assert "2-0101" not in response.text and "Y-0101" not in response.text
                checked.append(f"{method} {route.path}")
        assert {
            "GET /portal/units/{unit_id}",
            "GET /portal/bills/{bill_id}",
            "POST /portal/bills/{bill_id}/pay",
        } <= set(checked)
    with session_factory(portal.hub.engine)() as session:
        assert session.scalars(select(PaymentIntent)).all() == [], "nothing was started for another owner's bill"
    own = signed_in(portal, "owner_b").get(f"/portal/bills/{portal.bill_b}")
    assert own.status_code == 200 and "2-0101" in own.text


def test_paying_with_the_demo_provider_settles_the_bill_and_shows_in_my_history_only(portal: Portal) -> None:
    client = signed_in(portal, "owner_a")
    start = client.post(f"/portal/bills/{portal.bill_a}/pay", follow_redirects=False)
    assert start.status_code == 303
    checkout = start.headers["location"]
    assert "/pay/demo/" in checkout
    page = client.get(checkout)
    assert page.status_code == 200 and "确认支付" in page.text
    reference = checkout.rsplit("/", 1)[1]
    waiting = client.get(f"/portal/bills/{portal.bill_a}?paid={reference}").text
    assert 'data-testid="payment-pending"' in waiting and "支付处理中" in waiting, "back before the provider confirmed"
    back = client.post(f"/pay/demo/{reference}/confirm", follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"].startswith(f"/portal/bills/{portal.bill_a}?paid=")
    bill = client.get(back.headers["location"]).text
    assert 'data-testid="settled"' in bill and "已结清" in bill
    assert 'data-testid="outstanding">¥0.00<' in bill and 'data-testid="pay"' not in bill
    assert 'data-testid="bill-payment"' in bill and "在线支付" in bill
    history = client.get("/portal/payments").text
    assert "demo-site-202603-1-0101" in history and "在线支付" in history
    again = client.post(f"/portal/bills/{portal.bill_a}/pay", follow_redirects=False)
    assert again.status_code == 409 and "nothing is owed" in again.text, "a settled bill cannot be paid twice"
    client_b = signed_in(portal, "owner_b")
    start = client_b.post(f"/portal/bills/{portal.bill_b}/pay", follow_redirects=False)
    reference = start.headers["location"].rsplit("/", 1)[1]
    client_b.post(f"/pay/demo/{reference}/confirm", follow_redirects=False)
    assert "demo-site-202603-2-0101" in client_b.get("/portal/payments").text
    mine = signed_in(portal, "owner_a").get("/portal/payments").text
    assert "demo-site-202603-2-0101" not in mine and "demo-site-202603-1-0101" in mine
