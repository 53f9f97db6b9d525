"""The patrol API on the seeded hub: an admin sets a patrol up, a guard scans online and offline, rules hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from httpx import Response
from sqlalchemy import select

from cloud.patrol.keys import checkpoint_code
from cloud.patrol.models import PatrolPlan
from cloud.patrol.plans import TZ, generate
from cloud.tickets.models import Attachment, Ticket
from tests.cloud.api.hub_app import Hub
from tests.cloud.ticket_pages.conftest import PNG

API = "/api/v1/patrol"


def post(hub: Hub, who: str, url: str, json: object) -> Response:
    return hub.client.post(f"{API}{url}", json=json, headers=hub.headers(who))


def set_up(hub: Hub) -> tuple[list[int], int]:
    """Two QR checkpoints, an unordered route, and a plan with a round that started 5 minutes ago."""
    x = hub.ids["site_x"]
    ids = []
    for n, (code, floor) in enumerate([("GATE-N", 1), ("ROOF", 18)]):
        r = post(hub, "admin_x", f"/sites/{x}/checkpoints",
                 {"code": code, "name": f"巡更点{n}", "method": "qr", "building_id": hub.ids["building_b"],
                  "floor": floor, "location": "楼梯间", "x_m": 10.0 * n, "y_m": 0})  # fmt: skip
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    route = post(hub, "admin_x", f"/sites/{x}/routes", {"name": "夜巡", "ordered": False, "suggest_from": ids})
    assert route.status_code == 201 and route.json()["stops"][1]["walk_s"] == 8  # 10 m at 1.2 m/s
    now = datetime.now(TZ).replace(second=0, microsecond=0) - timedelta(minutes=5)
    plan = post(hub, "admin_x", f"/sites/{x}/plans",
                {"route_id": route.json()["id"], "name": "夜班", "recurrence": "daily",
                 "start_date": now.date().isoformat(), "shift_start": now.time().isoformat(),
                 "shift_end": (now + timedelta(hours=2)).time().isoformat(), "round_every_min": 60,
                 "round_minutes": 30, "assignees": [hub.users["guard_x"].id]})  # fmt: skip
    assert plan.status_code == 201, plan.text
    with hub.session() as session, session.begin():
        created = generate(session, session.get_one(PatrolPlan, plan.json()["id"]), now.date(), now.date(),
                           datetime.now(UTC) - timedelta(hours=1))  # fmt: skip
        assert created == 1  # the round already running, which the API (generating from now on) left out
    rounds = hub.get("guard_x", f"{API}/sites/{x}/rounds", params={"day": now.date().isoformat()}).json()
    running = [r for r in rounds if datetime.fromisoformat(r["starts_at"]) <= datetime.now(UTC)]
    return ids, running[0]["id"]


def test_a_guard_scans_online_and_offline_and_the_round_shows_it(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EH_TICKET_FILES_DIR", str(tmp_path / "ticket-files"))
    ids, round_id = set_up(hub)
    x = hub.ids["site_x"]
    svg = hub.get("admin_x", f"{API}/checkpoints/{ids[0]}/qr.svg")
    png = hub.get("admin_x", f"{API}/checkpoints/{ids[0]}/qr.png")
    assert svg.headers["content-type"].startswith("image/svg") and png.content.startswith(b"\x89PNG")
    with hub.session() as session, session.begin():
        codes = [checkpoint_code(session, x, i) for i in ids]

    nonce = post(hub, "guard_x", "/challenges", {"site_id": x}).json()["nonce"]
    scan = post(hub, "guard_x", "/scans", {"code": codes[0], "nonce": nonce})
    assert scan.status_code == 201 and scan.json()["trust"] == "normal" and scan.json()["counted"]
    replay = post(hub, "guard_x", "/scans", {"code": codes[0], "nonce": nonce})
    assert replay.status_code == 409 and "replayed" in replay.json()["detail"]

    scanned_at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    batch = [{"code": codes[1], "scanned_at": scanned_at, "client_ref": "offline-0001"},
             {"code": codes[1][:-3] + "xyz", "scanned_at": scanned_at, "client_ref": "offline-0002"}]  # fmt: skip
    synced = post(hub, "guard_x", "/scans/offline", {"site_id": x, "scans": batch}).json()
    assert synced[0]["scan"]["trust"] == "low" and synced[0]["scan"]["result"] == "on_time"
    assert synced[1]["scan"] is None and "signature is wrong" in synced[1]["rejected"]

    view = hub.get("admin_x", f"{API}/rounds/{round_id}").json()
    assert [(c["result"], c["trust"]) for c in view["checkpoints"]] == [("on_time", "normal"), ("on_time", "low")]
    assert view["checkpoints"][1]["scanned_at"].startswith(scanned_at[:19])

    report = {"checkpoint_id": str(ids[1]), "note": "天台门锁坏了", "client_ref": "exc-0001"}
    photo = {"photo": ("lock.png", PNG, "image/png")}
    ticket = hub.client.post(f"{API}/exceptions", data=report, files=photo, headers=hub.headers("guard_x"))
    again = hub.client.post(f"{API}/exceptions", data=report, files=photo, headers=hub.headers("guard_x"))
    assert ticket.status_code == 201 and again.json() == ticket.json()
    with hub.session() as session:
        opened = session.get_one(Ticket, ticket.json()["ticket_id"])
        assert opened.title == "巡更异常：巡更点1" and "天台门锁坏了" in opened.description
        assert len(session.scalars(select(Attachment).where(Attachment.ticket_id == opened.id)).all()) == 1

    month = datetime.now(TZ).strftime("%Y-%m")
    assert hub.get("admin_x", f"{API}/sites/{x}/stats", params={"month": month}).status_code == 200
    csv = hub.get("admin_x", f"{API}/sites/{x}/stats.csv", params={"month": month})
    assert csv.status_code == 200 and "完成率" in csv.text


def test_roles_and_scope_are_enforced(hub: Hub) -> None:
    x, y = hub.ids["site_x"], hub.ids["site_y"]
    body = {"code": "P1", "name": "点1", "method": "qr"}
    assert post(hub, "guard_x", f"/sites/{x}/checkpoints", body).status_code == 403
    assert post(hub, "admin_x", f"/sites/{y}/checkpoints", body).status_code == 404
    assert post(hub, "admin_x", "/challenges", {"site_id": x}).status_code == 403
    assert hub.get("engineer_y", f"{API}/sites/{x}/checkpoints").status_code == 404
    assert hub.get("owner_a", f"{API}/sites/{x}/checkpoints").status_code == 403


def test_bad_setup_input_is_refused_with_what_to_fix_and_changes_nothing(hub: Hub) -> None:
    x = hub.ids["site_x"]
    first = post(hub, "admin_x", f"/sites/{x}/checkpoints", {"code": "P1", "name": "点1", "method": "qr"})
    again = post(hub, "admin_x", f"/sites/{x}/checkpoints", {"code": "P1", "name": "点1", "method": "qr"})
    assert first.status_code == 201 and again.status_code == 422
    assert "taken" in again.json()["detail"]
    route = post(
        hub,
        "admin_x",
        f"/sites/{x}/routes",
        {"name": "r", "stops": [{"checkpoint_id": first.json()["id"], "walk_s": 0}]},
    )
    plan = {"route_id": route.json()["id"], "name": "p", "recurrence": "daily", "start_date": "2026-03-01",
            "shift_start": "09:00", "shift_end": "10:00", "round_every_min": 20, "round_minutes": 30,
            "assignees": [hub.users["guard_x"].id]}  # fmt: skip
    refused = post(hub, "admin_x", f"/sites/{x}/plans", plan)
    assert refused.status_code == 422 and "round_every_min" in refused.json()["detail"]
    not_a_guard = post(
        hub, "admin_x", f"/sites/{x}/plans", plan | {"round_every_min": 60, "assignees": [hub.users["engineer_x"].id]}
    )
    assert not_a_guard.status_code == 422 and "guards of this site" in not_a_guard.json()["detail"]
    with hub.session() as session:
        assert session.scalars(select(PatrolPlan)).all() == []


def test_an_admin_rotates_and_revokes_keys_and_issues_guard_badges(hub: Hub) -> None:
    x = hub.ids["site_x"]
    first = post(hub, "admin_x", f"/sites/{x}/keys", {})
    second = post(hub, "admin_x", f"/sites/{x}/keys", {})
    assert (first.status_code, first.json()["kid"], second.json()["kid"]) == (201, 1, 2)
    badge = hub.get("admin_x", f"{API}/sites/{x}/badges/{hub.users['guard_x'].id}").json()["code"]
    assert badge.startswith(f"EHP1.b.{x}.2.{hub.users['guard_x'].id}.")
    assert hub.get("admin_x", f"{API}/sites/{x}/badges/{hub.users['engineer_x'].id}").status_code == 404
    revoked = post(hub, "admin_x", f"/sites/{x}/keys/1/revoke", {})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert post(hub, "admin_x", f"/sites/{x}/keys/9/revoke", {}).status_code == 404
    assert post(hub, "guard_x", f"/sites/{x}/keys", {}).status_code == 403
