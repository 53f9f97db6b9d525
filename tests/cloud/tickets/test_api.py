"""The ticket API: an owner's repair request with a photo, accepted and completed by the technician and rated by
the owner; every ticket route walked (from the app's own route table) with another owner's ticket answers 403/404
and changes nothing; staff of another site see nothing; photos are checked and served only through the ticket."""

from __future__ import annotations

import io
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select

from cloud.api.deps import API_PREFIX
from cloud.tickets.models import Rating, Ticket, TicketEvent
from tests.cloud.tickets.conftest import TicketHub, at

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
BASE = f"{API_PREFIX}/tickets"


def submit_repair(th: TicketHub, owner: str = "owner_b", unit: str = "unit_b") -> dict[str, Any]:
    r = th.post(
        owner,
        f"{BASE}/repair",
        json={"unit_id": th.hub.ids[unit], "category": "plumbing", "description": "卫生间地漏堵塞"},
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_owner_repair_with_photo_accepted_completed_and_rated(ticket_hub: TicketHub) -> None:
    th = ticket_hub
    ticket = submit_repair(th)
    tid = ticket["id"]
    assert (ticket["state"], ticket["state_label"], ticket["source"]) == ("assigned", "已派单", "owner")
    assert [c["name"] for c in ticket["clocks"]] == ["response", "resolution"]
    assert ticket["clocks"][0]["due_at"] is not None
    assert ticket["assignments"][0]["score"]["zone"] == 30
    r = th.post("owner_b", f"{BASE}/{tid}/photos", files={"photo": ("leak.png", io.BytesIO(PNG), "image/png")})
    assert r.status_code == 201, r.text
    photo_id = r.json()["id"]
    got = th.get("owner_b", f"{BASE}/{tid}/photos/{photo_id}")
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, PNG, "image/png")

    th.now = at(3)
    assert th.post("plumber_b2", f"{BASE}/{tid}/accept").json()["state"] == "accepted"
    th.now = at(15)
    assert th.post("plumber_b2", f"{BASE}/{tid}/arrive").json()["state"] == "in_progress"
    r = th.post(
        "plumber_b2",
        f"{BASE}/{tid}/items",
        json={"kind": "material", "description": "地漏芯", "quantity": "1", "unit_price_fen": 3500},
    )
    assert r.status_code == 201 and r.json()["amount_fen"] == 3500
    th.now = at(40)
    done = th.post("plumber_b2", f"{BASE}/{tid}/complete", json={"note": "已疏通", "chargeable": True}).json()
    assert (done["state"], done["charge_fen"]) == ("done", 3500)
    assert done["clocks"][0]["status"] == "met" and done["clocks"][1]["status"] == "met"

    rating = {"speed": 5, "attitude": 5, "quality": 4, "comment": "师傅很专业"}
    assert th.post("owner_a", f"{BASE}/{tid}/rating", json=rating).status_code == 404
    assert th.post("owner_b", f"{BASE}/{tid}/rating", json=rating).status_code == 201
    again = th.post("owner_b", f"{BASE}/{tid}/rating", json=rating)
    assert (again.status_code, again.json()["detail"]) == (
        409,
        f"ticket {tid} was rated already: a rating is given once",
    )
    detail = th.get("owner_b", f"{BASE}/{tid}").json()
    assert detail["rating"]["quality"] == 4
    assert [h["action"] for h in detail["history"]] == [
        "open",
        "assign",
        "photo",
        "accept",
        "arrive",
        "item",
        "complete",
        "rate",
    ]


def test_bad_requests_are_refused_with_what_to_fix_and_staff_see_only_their_sites(ticket_hub: TicketHub) -> None:
    th = ticket_hub
    tid = submit_repair(th)["id"]
    r = th.post(
        "owner_b", f"{BASE}/repair", json={"unit_id": th.hub.ids["unit_b"], "category": "magic", "description": "x"}
    )
    assert r.status_code == 422 and "plumbing" in r.text
    r = th.post("owner_b", f"{BASE}/{tid}/photos", files={"photo": ("x.png", io.BytesIO(b"GIF89a..."), "image/png")})
    assert (r.status_code, r.json()["detail"]) == (415, "only JPEG, PNG or WebP photos are accepted")
    big = PNG + b"\x00" * 200_000
    r = th.post("owner_b", f"{BASE}/{tid}/photos", files={"photo": ("big.png", io.BytesIO(big), "image/png")})
    assert r.status_code == 413 and "largest accepted is 200000 bytes" in r.json()["detail"]
    r = th.post("plumber_b2", f"{BASE}/{tid}/complete", json={})
    assert r.status_code == 409 and "from assigned you may: " in r.json()["detail"]
    with th.hub.session() as s:
        assert s.scalar(select(func.count()).where(TicketEvent.ticket_id == tid)) == 2  # open, assign
    # staff see their own sites' tickets only
    assert th.get("engineer_y", BASE).json() == []
    assert th.get("engineer_y", f"{BASE}/{tid}").status_code == 404
    assert th.post("engineer_y", f"{BASE}/{tid}/cancel", json={"reason": "x"}).status_code == 404
    assert [t["id"] for t in th.get("engineer_x", BASE).json()] == [tid]
    assert [t["id"] for t in th.get("plumber_b2", BASE, params={"assigned_to_me": True}).json()] == [tid]
    assert th.get("plumber_b1", BASE, params={"assigned_to_me": True}).json() == []
    stats = th.get("engineer_x", f"{BASE}/stats").json()
    assert (stats["total"], stats["completed"], stats["per_category"][0]["category"]) == (1, 0, "plumbing")


def ticket_routes(th: TicketHub) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(th.hub.app.routes):
        if isinstance(route.original_route, APIRoute) and route.path.startswith(BASE):
            found += [(method, route.path) for method in sorted(route.methods or ())]
    return found


SAMPLE_BODY: dict[str, Any] = {
    "technician_id": 1,
    "reason": "x",
    "note": "x",
    "body": "x",
    "speed": 5,
    "attitude": 5,
    "quality": 5,
    "comment": "x",
    "kind": "material",
    "description": "x",
    "quantity": "1",
    "unit_price_fen": 1,
    "on_duty": True,
    "starts_at": "2026-03-01T08:00:00+08:00",
    "ends_at": "2026-03-01T18:00:00+08:00",
    "chargeable": False,
    "priority": "urgent",
    "response_min": 10,
    "resolution_min": 60,
    "building_id": 1,
}


def test_every_ticket_route_refuses_another_owners_ticket(ticket_hub: TicketHub) -> None:
    """Owner A aims every ticket route (read from the app) at owner B's ticket and photo: 403 or 404 each, and
    nothing changes; owner B's own calls on the same routes are not all refused (the ids were right)."""
    th = ticket_hub
    victim = submit_repair(th, "owner_b", "unit_b")["id"]
    photo = th.post("owner_b", f"{BASE}/{victim}/photos", files={"photo": ("a.png", io.BytesIO(PNG), "image/png")})
    targets = {
        "ticket_id": victim,
        "attachment_id": photo.json()["id"],
        "technician_id": 1,
        "site_id": th.hub.ids["site_x"],
    }
    routes = ticket_routes(th)
    assert len(routes) >= 25, routes
    with th.hub.session() as s:
        before = (s.scalar(select(func.count()).select_from(TicketEvent)), s.get(Ticket, victim).state)
    answers = {}
    for method, path in routes:
        url = path
        for name, value in targets.items():
            url = url.replace("{" + name + "}", str(value))
        assert "{" not in url, f"no victim object for {path}"
        if "{ticket_id}" not in path:
            continue  # routes without a ticket: owner A's own list, repair form and role-gated staff routes below
        kwargs: dict[str, Any] = {"headers": th.hub.headers("owner_a")}
        if path.endswith("/photos") and method == "POST":
            kwargs["files"] = {"photo": ("a.png", io.BytesIO(PNG), "image/png")}
        elif method != "GET":
            kwargs["json"] = {}
        r = th.hub.client.request(method, url, **kwargs)
        answers[(method, path)] = r.status_code
        assert r.status_code in (403, 404), f"{method} {url} answered {r.status_code}: {r.text}"
        assert "卫生间地漏堵塞" not in r.text
    with th.hub.session() as s:
        assert (s.scalar(select(func.count()).select_from(TicketEvent)), s.get(Ticket, victim).state) == before
        assert s.scalar(select(func.count()).select_from(Rating)) == 0
    mine = th.get("owner_a", BASE).json()
    assert mine == [], "owner A sees none of owner B's tickets in the list"
    for method, path in routes:
        if "{ticket_id}" in path or (method, path) in (("GET", BASE), ("POST", f"{BASE}/repair")):
            continue
        url = path
        for name, value in targets.items():
            url = url.replace("{" + name + "}", str(value))
        r = th.hub.client.request(method, url, headers=th.hub.headers("owner_a"), json=SAMPLE_BODY)
        assert r.status_code == 403, f"{method} {url} answered {r.status_code} to an owner"
    # SLA targets per site, category and priority: admins of the site set them; new tickets use them
    policy = {
        "site_id": th.hub.ids["site_x"],
        "category": "plumbing",
        "priority": "normal",
        "response_min": 30,
        "resolution_min": 240,
    }
    assert (
        th.hub.client.put(f"{BASE}/sla-policies", json=policy, headers=th.hub.headers("engineer_x")).status_code == 403
    )
    hub_wide = th.hub.client.put(
        f"{BASE}/sla-policies", json={**policy, "site_id": None}, headers=th.hub.headers("admin_x")
    )
    assert (hub_wide.status_code, hub_wide.json()["detail"]) == (
        403,
        "hub-wide policies (no site_id) need an admin with every site",
    )
    assert th.hub.client.put(f"{BASE}/sla-policies", json=policy, headers=th.hub.headers("admin_x")).status_code == 200
    clocks = submit_repair(th)["clocks"]
    assert [(c["name"], c["target_s"]) for c in clocks] == [("response", 1800), ("resolution", 14400)]
