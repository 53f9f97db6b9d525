"""Metered billing in a real browser: a hub HTTP server whose demo site was billed by the real bill-run service
from a month of hourly meter readings; an owner signs in on a phone-sized screen, opens the bill, checks a line
against the readings shown, pays with the demo provider (its checkout page, 确认支付, its signed webhook back to
the hub over HTTP) and sees the bill settled with the payment in the history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cloud.api.app import create_app
from cloud.console.pages import mount_console
from cloud.db import make_engine
from cloud.schema import create_schema
from tests.cloud.api.hub_app import PASSWORD, SETTINGS, seed
from tests.cloud.portal.metered import run_bills, seed_billing
from tests.support.browser import chromium, serve

BILL = "demo-site-202602-1-0101"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def hub_url(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A hub on SQLite with the February bills issued; yields its URL and owner A's sign-in name."""
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    create_schema(engine)
    users, _ = seed(engine)
    seed_billing(engine)
    run = run_bills(engine, issue=True)
    assert run.summary["bills_issued"] == 48, run.error
    app = create_app(SETTINGS, engine=engine)
    mount_console(app)
    try:
        with serve(app) as url:
            yield url, users["owner_a"].username
    finally:
        engine.dispose()


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser:
        yield browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)


def test_owner_checks_a_bill_line_against_its_readings_pays_and_sees_it_settled(
    hub_url: tuple[str, str], page: Page
) -> None:
    url, owner = hub_url
    page.goto(f"{url}/portal/")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.fill("input[name=username]", owner)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("[data-testid=nav-portal]")
    expect(page.locator("h1")).to_contain_text("我的家")

    card = page.locator(f"[data-testid='bill-{BILL}']")
    expect(card.locator("[data-testid=bill-status]")).to_have_text("已逾期")  # due 2026-03-15
    card.click()
    expect(page.locator("h1")).to_contain_text("2026-02")

    line = page.locator("[data-testid=line]", has=page.locator("[data-testid=line-label]", has_text="水费 第一档 水费"))
    start = Decimal(line.locator("[data-testid=reading-start]").inner_text())
    end = Decimal(line.locator("[data-testid=reading-end]").inner_text())
    quantity = Decimal(line.locator("[data-testid=line-quantity]").inner_text())
    price = Decimal(line.locator("[data-testid=line-price]").inner_text())
    amount = Decimal(line.locator("[data-testid=line-amount]").inner_text().lstrip("¥").replace(",", ""))
    assert quantity == end - start > 0, "the usage is the difference of the readings shown"
    assert amount == (quantity * price).quantize(Decimal("0.01"), ROUND_HALF_UP), "amount = usage x unit price"
    assert line.locator("[data-testid=estimated]").count() == 0
    pay = page.locator("[data-testid=pay]")
    assert pay.bounding_box()["height"] >= 44, "a touch target a thumb can hit"  # type: ignore[index]
    outstanding = page.locator("[data-testid=outstanding]").inner_text()

    pay.click()
    expect(page).to_have_url(re.compile(r"/pay/demo/"))
    expect(page.locator("[data-testid=amount]")).to_have_text(outstanding)
    page.click("[data-testid=confirm-pay]")

    expect(page).to_have_url(re.compile(r"/portal/bills/\d+\?paid="))
    expect(page.locator("[data-testid=settled]")).to_have_text("已结清")
    expect(page.locator("[data-testid=bill-status]")).to_have_text("已结清")
    expect(page.locator("[data-testid=outstanding]")).to_have_text("¥0.00")
    expect(page.locator("[data-testid=pay]")).to_have_count(0)
    expect(page.locator("[data-testid=bill-payment]")).to_contain_text("在线支付")

    page.click("[data-testid=portal-payments]")
    history = page.locator("[data-testid^=payment-]")
    expect(history).to_have_count(1)
    expect(history).to_contain_text(BILL)
    expect(history).to_contain_text(outstanding)


def test_finance_starts_a_preview_and_its_page_follows_the_run_to_the_end(hub_url: tuple[str, str], page: Page) -> None:
    url, _ = hub_url
    page.goto(f"{url}/console/login")
    page.fill("input[name=username]", "finance_x")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("[data-testid=nav-finance]")
    page.fill("input[name=period]", "2026-02")
    page.click("[data-testid=start-preview]")
    expect(page).to_have_url(re.compile(r"/console/finance/runs/\d+$"))
    expect(page.locator("[data-testid=run-state]")).to_have_text("已预览", timeout=20_000)
    expect(page.locator("[data-testid=progress-text]")).to_have_text("48/48")
    expect(page.locator("[data-testid=no-diff]")).to_be_visible()
