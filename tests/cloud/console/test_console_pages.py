"""Console pages: sign-in by cookie, zh-CN by default with English switchable, and the same scope as the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.console.i18n import CATALOGUE, LANGS
from cloud.console.pages import mount_console
from tests.cloud.api.hub_app import PASSWORD, SETTINGS, Hub

TEMPLATES = Path(__file__).resolve().parents[3] / "cloud" / "console" / "templates"


@pytest.fixture
def console(hub: Hub) -> Iterator[Hub]:
    """The seeded hub served with its console (mounted before the app starts, as `hub serve` does)."""
    app = create_app(SETTINGS, engine=hub.engine, sms_sender=hub.sms)
    mount_console(app)
    with TestClient(app):
        yield replace(hub, app=app)


def signed_in(hub: Hub, name: str) -> TestClient:
    client = TestClient(hub.app)
    response = client.post("/console/login", data={"username": hub.users[name].username, "password": PASSWORD},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    assert "httponly" in response.headers["set-cookie"].lower()
    return client


def test_pages_redirect_to_sign_in_without_a_session(console: Hub) -> None:
    for path in ("/console/", f"/console/meters/{console.ids['meter_a']}", "/"):
        response = TestClient(console.app).get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] in ("/console/login", "/console/")


def test_wrong_password_shows_the_reason_in_chinese(console: Hub) -> None:
    response = TestClient(console.app).post("/console/login", data={"username": "admin", "password": "nope"})
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert "eh_session" not in response.headers.get("set-cookie", "")


def test_overview_is_chinese_by_default_and_english_on_request(console: Hub) -> None:
    client = signed_in(console, "admin_x")
    page = client.get("/console/")
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert "边缘网关" in page.text and "demo-edge" in page.text and "在线" in page.text
    english = client.get("/console/?lang=en")
    assert '<html lang="en">' in english.text and "Edge gateways" in english.text
    assert client.get("/console/").text.count("Edge gateways") == 1, "the choice is remembered"


def test_staff_see_only_their_sites(console: Hub) -> None:
    client = signed_in(console, "engineer_x")
    page = client.get("/console/").text
    assert "demo-edge" in page and "y-edge" not in page and "EM-Y-0101" not in page
    assert client.get(f"/console/equipment/{console.ids['equipment_y']}").status_code == 404
    assert client.get(f"/console/equipment/{console.ids['equipment_y']}/telemetry.json").status_code == 404
    assert client.get(f"/console/meters/{console.ids['meter_y']}/usage.json").status_code == 404


def test_owner_sees_their_meter_and_never_another_owners(console: Hub) -> None:
    client = signed_in(console, "owner_a")
    own = client.get(f"/console/meters/{console.ids['meter_a']}/usage.json?bucket=month")
    assert own.status_code == 200
    data = own.json()
    assert data["unit"] == "kWh" and data["latest"]["value"] == pytest.approx(100.0 + 1.5 * 48)
    assert sum(v for _, v in data["buckets"] if v) == pytest.approx(1.5 * 48), "consumption of the seeded 48 hours"
    for path in (f"/console/meters/{console.ids['meter_b']}", f"/console/meters/{console.ids['meter_b']}/usage.json",
                 f"/console/equipment/{console.ids['equipment_x']}"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    overview = client.get("/console/").text
    assert "EM-B1-U01" in overview and "EM-B2-U01" not in overview


def test_equipment_page_lists_telemetry_series(console: Hub) -> None:
    client = signed_in(console, "engineer_x")
    assert client.get(f"/console/equipment/{console.ids['equipment_x']}").status_code == 200
    charts = client.get(f"/console/equipment/{console.ids['equipment_x']}/telemetry.json").json()["charts"]
    assert "outlet_pressure" in [c["point"] for c in charts]


def test_every_text_on_every_page_is_translated() -> None:
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r't\("([a-z_]+)"\)', template.read_text()))
    assert used - set(CATALOGUE) == set(), "templates use keys missing from the catalogue"
    for key, texts in CATALOGUE.items():
        assert set(texts) == set(LANGS) and all(texts.values()), key
