"""Owner repair pages and the technician page: an owner reports a repair with a photo and follows it; the
plumber it is dispatched to accepts, checks in, adds material and completes it; the owner rates it once.
Owners never reach other owners' tickets and technicians only their own (404, as for a missing ticket)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from cloud.db import session_factory
from cloud.tickets.models import Attachment, Rating, Ticket, TicketSiteSettings, TicketState, WorkItem
from tests.cloud.api.hub_app import Hub
from tests.cloud.ticket_pages.conftest import PNG, signed_in


def report(client: TestClient, hub: Hub, *, unit: str = "unit_a", category: str = "plumbing") -> int:
    response = client.post(
        "/console/repairs",
        data={"unit_id": str(hub.ids[unit]), "category": category, "description": "厨房水槽下漏水",
              "preferred_from": "2026-03-02T09:00", "preferred_to": "2026-03-02T12:00"},
        files={"photo": ("leak.png", PNG, "image/png")},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/console/repairs/(\d+)", response.headers["location"])
    assert found is not None
    return int(found.group(1))


def ticket(hub: Hub, ticket_id: int) -> Ticket:
    with session_factory(hub.engine)() as session:
        return session.get_one(Ticket, ticket_id)


def test_an_owner_reports_a_repair_with_a_photo_and_sees_it_go_to_a_plumber(desk: Hub) -> None:
    owner = signed_in(desk, "owner_a")
    ticket_id = report(owner, desk)

    page = owner.get(f"/console/repairs/{ticket_id}")
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert "厨房水槽下漏水" in page.text and "已派单" in page.text and "2026-03-02 09:00" in page.text
    assert f"/console/tickets/{ticket_id}/photos/" in page.text
    photo_url = re.search(rf"/console/tickets/{ticket_id}/photos/\d+", page.text)
    assert photo_url is not None
    photo = owner.get(photo_url.group())
    assert photo.status_code == 200 and photo.content == PNG and photo.headers["content-type"] == "image/png"
    saved = ticket(desk, ticket_id)
    assert (saved.unit_id, saved.assignee_id, saved.state) == (desk.ids["unit_a"], desk.ids["tech_plumber"],
                                                               TicketState.ASSIGNED)  # fmt: skip
    listing = owner.get("/console/repairs")
    assert f"/console/repairs/{ticket_id}" in listing.text
    assert "Progress" in owner.get(f"/console/repairs/{ticket_id}?lang=en").text


def test_owners_stay_within_their_own_repairs_and_units(desk: Hub) -> None:
    ticket_id = report(signed_in(desk, "owner_a"), desk)
    other = signed_in(desk, "owner_b")
    assert other.get(f"/console/repairs/{ticket_id}").status_code == 404
    assert other.get(f"/console/tickets/{ticket_id}/photos/1").status_code == 404
    rated = other.post(f"/console/repairs/{ticket_id}/rate", data={"speed": 5, "attitude": 5, "quality": 5})
    assert rated.status_code == 404
    assert f"/console/repairs/{ticket_id}" not in other.get("/console/repairs").text
    assert other.get(f"/console/tickets/{ticket_id}").status_code == 403, "the staff board is not for owners"

    response = other.post("/console/repairs", data={"unit_id": str(desk.ids["unit_a"]), "category": "plumbing",
                                                   "description": "漏水"})  # fmt: skip
    assert response.status_code == 404 and f"unit {desk.ids['unit_a']} not found" in response.text
    refused = other.post("/console/repairs", data={"unit_id": str(desk.ids["unit_b"]), "category": "plumbing",
                                                  "description": "漏水"},
                         files={"photo": ("notes.txt", b"not a photo", "image/png")})  # fmt: skip
    assert refused.status_code == 415 and "only JPEG, PNG or WebP" in refused.text
    with session_factory(desk.engine)() as session:
        assert session.scalars(select(Ticket.id)).all() == [ticket_id], "a refused photo leaves no ticket behind"


def test_a_technician_sees_only_the_tickets_assigned_to_them(desk: Hub) -> None:
    ticket_id = report(signed_in(desk, "owner_a"), desk)
    plumber, electrician = signed_in(desk, "plumber"), signed_in(desk, "electrician")
    assert f"/console/tech/tickets/{ticket_id}" in plumber.get("/console/tech").text
    assert f"/console/tech/tickets/{ticket_id}" not in electrician.get("/console/tech").text
    assert electrician.get(f"/console/tech/tickets/{ticket_id}").status_code == 404
    assert electrician.post(f"/console/tech/tickets/{ticket_id}/accept").status_code == 404
    assert electrician.get(f"/console/tickets/{ticket_id}/photos/1").status_code == 404
    assert electrician.get(f"/console/tickets/{ticket_id}").status_code == 403, "the staff board is not theirs"
    assert ticket(desk, ticket_id).state is TicketState.ASSIGNED


def test_the_technician_works_the_ticket_and_the_owner_rates_it_once(desk: Hub) -> None:
    owner = signed_in(desk, "owner_a")
    ticket_id = report(owner, desk)
    plumber = signed_in(desk, "plumber")
    base = f"/console/tech/tickets/{ticket_id}"

    early = plumber.post(f"{base}/complete", data={"note": "x"})
    assert early.status_code == 409 and "cannot complete" in early.text, "the state machine's reason is shown"
    for step in ("accept", "arrive"):
        assert plumber.post(f"{base}/{step}", follow_redirects=False).status_code == 303
    added = plumber.post(f"{base}/material", data={"kind": "material", "description": "密封圈", "quantity": "2",
                                                   "unit_price": "3.50"}, follow_redirects=False)  # fmt: skip
    assert added.status_code == 303
    bad_price = plumber.post(f"{base}/material", data={"description": "水管", "quantity": "1", "unit_price": "1.234"})
    assert bad_price.status_code == 422 and "more than two decimals" in bad_price.text
    assert plumber.post(f"{base}/photo", files={"photo": ("fixed.png", PNG, "image/png")},
                        follow_redirects=False).status_code == 303  # fmt: skip
    assert plumber.post(f"{base}/complete", data={"note": "更换密封圈"}, follow_redirects=False).status_code == 303
    assert "已完成" in plumber.get(base).text

    done = owner.get(f"/console/repairs/{ticket_id}").text
    assert "已完成" in done and 'data-testid="rate-form"' in done and "更换密封圈" in done
    rating = {"speed": "4", "attitude": "5", "quality": "5", "comment": "师傅很专业"}
    assert owner.post(f"/console/repairs/{ticket_id}/rate", data=rating, follow_redirects=False).status_code == 303
    again = owner.post(f"/console/repairs/{ticket_id}/rate", data=rating)
    assert again.status_code == 409 and "rated already" in again.text
    assert 'data-testid="rate-form"' not in owner.get(f"/console/repairs/{ticket_id}").text
    with session_factory(desk.engine)() as session:
        stored = session.scalars(select(Rating).where(Rating.ticket_id == ticket_id)).one()
        assert (stored.speed, stored.attitude, stored.quality, stored.comment) == (4, 5, 5, "师傅很专业")
        assert session.scalars(select(WorkItem.amount_fen).where(WorkItem.ticket_id == ticket_id)).all() == [700]
        assert len(session.scalars(select(Attachment).where(Attachment.ticket_id == ticket_id)).all()) == 2


def test_at_a_grab_mode_site_the_plumber_grabs_the_offered_repair(desk: Hub) -> None:
    with session_factory(desk.engine).begin() as session:
        session.add(TicketSiteSettings(site_id=desk.ids["site_x"], grab_mode=True, accept_timeout_s=600,
                                       business_days=[]))  # fmt: skip
    ticket_id = report(signed_in(desk, "owner_a"), desk)
    assert ticket(desk, ticket_id).state is TicketState.NEW, "offered, not assigned"
    plumber, electrician = signed_in(desk, "plumber"), signed_in(desk, "electrician")
    assert f'data-testid="grab-{ticket_id}"' in plumber.get("/console/tech").text
    assert f'data-testid="grab-{ticket_id}"' not in electrician.get("/console/tech").text
    assert electrician.post(f"/console/tech/tickets/{ticket_id}/grab").status_code == 404
    grabbed = plumber.post(f"/console/tech/tickets/{ticket_id}/grab", follow_redirects=False)
    assert grabbed.status_code == 303
    saved = ticket(desk, ticket_id)
    assert (saved.state, saved.assignee_id) == (TicketState.ACCEPTED, desk.ids["tech_plumber"])
    assert plumber.post(f"/console/tech/tickets/{ticket_id}/grab").status_code == 409
