"""`make demo` end to end in a real browser: the demo starts on embedded defaults, a staff member signs in
to the console in headless Chromium and sees a meter chart whose data came from a simulated meter through
the edge agent, the broker and the hub; Ctrl-C then stops everything cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


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

    def stored(self) -> int:
        counts = [int(m.group(1)) for line in self.lines if (m := re.search(r"hub stored (\d+) readings", line))]
        return counts[-1] if counts else 0


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
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (deploy/ensure-services.sh does this as root)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page()
        browser.close()


@pytest.mark.slow
def test_demo_console_shows_a_meter_chart_fed_through_the_edge(demo: Demo, page: Page) -> None:
    url = demo.wait_for(r"console: (http://\S+)", 60).group(1)
    user, password = demo.wait_for(r"demo login: (\S+) / (\S+)", 5).groups()
    # energy counters are polled every 15 s in the demo: two readings make the first consumption
    deadline = time.monotonic() + 90
    while demo.stored() < 2000 and time.monotonic() < deadline:
        time.sleep(1)
    assert demo.stored() > 0, "\n".join(demo.lines[-30:])

    page.goto(url)
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=edges]")).to_contain_text("demo-edge")
    expect(page.locator("[data-testid=edges]")).to_contain_text("在线")

    page.click("text=EM-B1-U01")
    expect(page.locator("h1")).to_contain_text("EM-B1-U01")
    page.click("[data-bucket=hour]")
    chart = page.locator("[data-testid=usage-chart]")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).not_to_have_attribute("data-points", "0", timeout=60_000)
    live = page.locator("[data-testid=live-value]").inner_text()
    assert float(live) > 0, "the live reading of the simulated meter"
    assert page.locator("[data-testid=live-unit]").inner_text() == "kWh"

    page.click("[data-testid=switch-lang]")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(timeout=60) == 0
    time.sleep(0.5)
    assert demo.lines[-1] == "demo stopped cleanly", "\n".join(demo.lines[-20:])
    acked = [int(n) for line in demo.lines for n in re.findall(r"acked through (\d+)", line)]
    assert acked and acked[-1] > 100, "the edge's outbox drains through the hub's acks"
