"""Patrol console pages: the printable QR sheet with Chinese labels, the live view and the guard page, by role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud.api.app import create_app
from cloud.console.pages import mount_console
from cloud.tickets.models import Attachment, Ticket
from tests.cloud.api.hub_app import PASSWORD, SETTINGS, Hub
from tests.cloud.ticket_pages.conftest import PNG


@pytest.fixture
def console(hub: Hub) -> Iterator[Hub]:
    app = create_app(SETTINGS, engine=hub.engine, sms_sender=hub.sms)
    mount_console(app)
    with TestClient(app):
        yield replace(hub, app=app)


def signed_in(hub: Hub, name: str) -> TestClient:
    client = TestClient(hub.app)
    client.post("/console/login", data={"username": hub.users[name].username, "password": PASSWORD})
    return client


def test_the_qr_sheet_labels_each_code_with_its_place_in_chinese(console: Hub) -> None:
    x = console.ids["site_x"]
    body = {"code": "ROOF", "name": "天台", "method": "qr", "building_id": console.ids["building_b"], "floor": 18,
            "location": "楼梯间出口"}  # fmt: skip
    assert (
        console.client.post(
            f"/api/v1/patrol/sites/{x}/checkpoints", json=body, headers=console.headers("admin_x")
        ).status_code
        == 201
    )
    admin = signed_in(console, "admin_x")
    sheet = admin.get(f"/console/patrol/sheet?site_id={x}")
    assert sheet.status_code == 200
    assert sheet.text.count("<svg") == 1 and "天台" in sheet.text and "楼层：18" in sheet.text
    assert "楼栋：" in sheet.text and "位置：楼梯间出口" in sheet.text and "小区：" in sheet.text
    assert signed_in(console, "guard_x").get(f"/console/patrol/sheet?site_id={x}").status_code == 403


def test_the_live_view_and_the_guard_page_are_for_their_roles(console: Hub) -> None:
    x = console.ids["site_x"]
    admin, guard = signed_in(console, "admin_x"), signed_in(console, "guard_x")
    assert "巡更实时" in admin.get(f"/console/patrol/live?site_id={x}").text
    page = guard.get("/console/patrol/guard")
    assert page.status_code == 200 and 'rel="manifest"' in page.text and "扫码或输入巡更点码" in page.text
    assert guard.get("/console/patrol/sw.js").headers["content-type"].startswith("text/javascript")
    assert admin.get("/console/patrol/guard").status_code == 403
    assert guard.get("/console/patrol/live").status_code == 403
    assert guard.get("/console/patrol/rounds.json").json() == []


def test_a_guard_reports_a_problem_with_a_photo_from_the_page(
    console: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EH_TICKET_FILES_DIR", str(tmp_path / "ticket-files"))
    x = console.ids["site_x"]
    body = {"code": "PUMP", "name": "泵房", "method": "scanner", "location": "地下二层"}
    checkpoint = console.client.post(
        f"/api/v1/patrol/sites/{x}/checkpoints", json=body, headers=console.headers("admin_x")
    )
    guard = signed_in(console, "guard_x")
    report = {"checkpoint_id": str(checkpoint.json()["id"]), "note": "水泵漏水", "client_ref": "page-report-1"}
    sent = guard.post("/console/patrol/exception", data=report, files={"photo": ("leak.png", PNG, "image/png")})
    assert sent.status_code == 200
    refused = guard.post("/console/patrol/exception", data=report | {"note": "x"})
    assert refused.status_code == 422
    with console.session() as session:
        ticket = session.get_one(Ticket, sent.json()["ticket_id"])
        assert ticket.title == "巡更异常：泵房" and ticket.description == "泵房，地下二层：水泵漏水"
        assert [
            a.content_type for a in session.scalars(select(Attachment).where(Attachment.ticket_id == ticket.id))
        ] == ["image/png"]
