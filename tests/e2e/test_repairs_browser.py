"""A repair end to end in a real browser against a real hub HTTP server: an owner reports a leak with a photo;
the plumber, whose page is open, sees the ticket arrive live (server-sent events), accepts it, checks in and
completes it; the owner sees it done and rates it. The rating and the photo are in the hub afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, select

from cloud.api.app import create_app
from cloud.auth.models import Role
from cloud.console.pages import mount_console
from cloud.db import make_engine, session_factory
from cloud.schema import create_schema
from cloud.tickets.attachments import AttachmentStore
from cloud.tickets.models import Attachment, Category, Rating, Ticket, TicketState
from cloud.tickets.technicians import upsert_technician
from tests.cloud.api.hub_app import PASSWORD, SETTINGS, add_user, seed
from tests.cloud.ticket_pages.conftest import PNG
from tests.support.browser import chromium, serve
from tests.support.browser import sign_in as console_sign_in


@dataclass
class RunningHub:
    url: str
    engine: Engine
    owner: str


@pytest.fixture
def running_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningHub]:
    """The seeded hub (demo site, owners, a plumber) served over HTTP on a free port, in a thread."""
    monkeypatch.setenv("EH_TICKET_FILES_DIR", str(tmp_path / "ticket-files"))
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    create_schema(engine)
    users, ids = seed(engine)
    with session_factory(engine).begin() as session:
        plumber = add_user(session, "plumber", Role.TECHNICIAN, sites=[ids["site_x"]])
        upsert_technician(session, plumber, ids["site_x"], skills=[Category.PLUMBING])
    app = create_app(SETTINGS, engine=engine)
    mount_console(app)
    try:
        with serve(app) as url:
            yield RunningHub(url, engine, users["owner_a"].username)
    finally:
        engine.dispose()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def sign_in(browser: Browser, hub: RunningHub, username: str) -> Page:
    page = console_sign_in(browser, hub.url, username, PASSWORD)
    expect(page).to_have_url(f"{hub.url}/console/")
    return page


def test_owner_reports_technician_completes_owner_rates(running_hub: RunningHub, browser: Browser,
                                                        tmp_path: Path) -> None:  # fmt: skip
    plumber = sign_in(browser, running_hub, "plumber")
    plumber.click("[data-testid=nav-tech]")
    expect(plumber.locator("h1")).to_have_text("我的工作")

    owner = sign_in(browser, running_hub, running_hub.owner)
    owner.click("[data-testid=nav-repairs]")
    owner.click("[data-testid=new-repair]")
    photo = tmp_path / "leak.png"
    photo.write_bytes(PNG)
    owner.select_option("[data-testid=category]", "plumbing")
    owner.fill("[data-testid=description]", "卫生间地漏返水")
    owner.set_input_files("[data-testid=photo-input]", str(photo))
    owner.click("[data-testid=submit-repair]")
    expect(owner.locator("[data-testid=ticket-state]")).to_have_text("已派单")
    expect(owner.locator("[data-testid=photos] img")).to_have_count(1)

    expect(plumber.locator("[data-testid=live-banner]")).to_be_visible()
    plumber.locator("[data-testid=my-tickets] a", has_text="卫生间地漏返水").click()
    plumber.click("[data-testid=accept]")
    expect(plumber.locator("[data-testid=ticket-state]")).to_have_text("已接单")
    plumber.click("[data-testid=arrive]")
    expect(plumber.locator("[data-testid=ticket-state]")).to_have_text("处理中")
    plumber.fill("textarea[name=note]", "疏通地漏")
    plumber.click("[data-testid=complete]")
    expect(plumber.locator("[data-testid=ticket-state]")).to_have_text("已完成")

    owner.reload()
    expect(owner.locator("[data-testid=ticket-state]")).to_have_text("已完成")
    owner.check("[data-testid=speed-5]")
    owner.check("[data-testid=attitude-4]")
    owner.check("[data-testid=quality-5]")
    owner.fill("[data-testid=rating-comment]", "很及时")
    owner.click("[data-testid=submit-rating]")
    expect(owner.locator("[data-testid=rating]")).to_contain_text("很及时")

    with session_factory(running_hub.engine)() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert ticket.state is TicketState.DONE
        rating = session.scalars(select(Rating).where(Rating.ticket_id == ticket.id)).one()
        assert (rating.speed, rating.attitude, rating.quality, rating.comment) == (5, 4, 5, "很及时")
        attachment = session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id)).one()
        assert AttachmentStore.from_env().path(attachment).read_bytes() == PNG
