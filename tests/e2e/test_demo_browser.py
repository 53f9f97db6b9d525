"""`make demo` end to end in a real browser: the demo starts on embedded defaults, a staff member signs in
to the console in headless Chromium and sees a meter whose live reading came from a simulated meter through
the edge agent, the broker and the hub, with its hourly history charted; the demo owner signs in and finds
last month's bill, issued by the bill-run service, with a line that matches its readings; Ctrl-C then stops
everything cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from cloud.timeseries.query import DEFAULT_TZ
from tests.support.browser import chromium, sign_in

REPO = Path(__file__).resolve().parents[2]


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "demo", "--no-timing", "--workdir", str(workdir)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines:
                if found := re.search(pattern, line):
                    return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"demo never printed {pattern!r}:\n" + "\n".join(self.lines[-40:]))

    def acked(self) -> list[int]:
        return [int(n) for line in self.lines for n in re.findall(r"acked through (\d+)", line)]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def staff_sees_a_live_meter(page: Page) -> None:
    expect(page.locator("[data-testid=edges]")).to_contain_text("demo-edge")
    expect(page.locator("[data-testid=edges]")).to_contain_text("在线")

    page.click("text=EM-B1-U01")
    expect(page.locator("h1")).to_contain_text("EM-B1-U01")
    page.click("[data-bucket=hour]")
    chart = page.locator("[data-testid=usage-chart]")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).not_to_have_attribute("data-points", "0")
    assert page.locator("[data-testid=live-unit]").inner_text() == "kWh"
    assert float(page.locator("[data-testid=live-value]").inner_text()) > 0
    read_at = datetime.strptime(page.locator("[data-testid=live-time]").inner_text(), "%Y-%m-%d %H:%M:%S")
    local_now = datetime.now(ZoneInfo(DEFAULT_TZ)).replace(tzinfo=None)
    assert local_now - read_at < timedelta(minutes=2), "the live reading comes from the running meter, not history"

    page.click("[data-testid=switch-lang]")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def owner_sees_last_months_bill(page: Page, period: str) -> None:
    page.click("[data-testid=nav-portal]")
    expect(page.locator("h1")).to_contain_text("我的家")
    card = page.locator(f"[data-testid='bill-demo-site-{period.replace('-', '')}-1-0101']")
    expect(card.locator("[data-testid=bill-status]")).to_have_text("待支付")
    card.click()
    expect(page.locator("h1")).to_contain_text(period)
    line = page.locator("[data-testid=line]", has=page.locator("[data-testid=line-label]", has_text="水费 第一档 水费"))
    start = Decimal(line.locator("[data-testid=reading-start]").inner_text())
    end = Decimal(line.locator("[data-testid=reading-end]").inner_text())
    quantity = Decimal(line.locator("[data-testid=line-quantity]").inner_text())
    price = Decimal(line.locator("[data-testid=line-price]").inner_text())
    amount = Decimal(line.locator("[data-testid=line-amount]").inner_text().lstrip("¥").replace(",", ""))
    assert quantity == end - start > 0, "the usage is the difference of the meter's readings shown"
    assert line.locator("[data-testid=estimated]").count() == 0, "hourly readings cover the month's boundaries"
    assert amount == (quantity * price).quantize(Decimal("0.01"), ROUND_HALF_UP), "amount = usage x unit price"


@pytest.mark.slow
def test_demo_shows_a_live_meter_to_staff_and_last_months_bill_to_the_owner(demo: Demo, browser: Browser) -> None:
    base = demo.wait_for(r"console: (http://\S+)/console/", 60).group(1)
    user, password = demo.wait_for(r"demo login: (\S+) / (\S+)", 5).groups()
    owner, owner_password = demo.wait_for(r"owner login: (\S+) / (\S+)", 5).groups()
    bills, period = demo.wait_for(r"billing: .*?(\d+) bills issued for (\d{4}-\d{2})", 5).groups()
    assert int(bills) == 48, "one bill per flat of the demo site"
    demo.wait_for(r"acked through [1-9]", 30)

    staff_sees_a_live_meter(sign_in(browser, base, user, password))
    owner_sees_last_months_bill(sign_in(browser, base, owner, owner_password), period)

    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(timeout=60) == 0
    time.sleep(0.5)
    assert demo.lines[-1] == "demo stopped cleanly", "\n".join(demo.lines[-20:])
    assert demo.acked()[-1] > 100, "the edge's outbox drains through the hub's acks"
