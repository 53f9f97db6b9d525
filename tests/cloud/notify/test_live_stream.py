"""Live push: a page streaming the signed-in user's notifications (server-sent events) gets one queued by
another transaction within milliseconds, and one queued elsewhere (another hub process) at the next poll."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import insert

from cloud.api.deps import SESSION_COOKIE
from cloud.db import session_factory
from cloud.notify import routes
from cloud.notify.live import HUB
from cloud.notify.models import Notification
from tests.cloud.api.hub_app import T0, Hub
from tests.cloud.notify.helpers import SseReader, queue, served

STREAM = "/api/v1/notifications/stream"
POLL_S = 0.3


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams look at the table (and send keep-alives) every 0.3 s instead of 2 s, so pages closing in these
    tests are noticed quickly; the wake-up path does not depend on it."""
    monkeypatch.setattr(routes, "STREAM_POLL_S", POLL_S)


def listening(user_id: int) -> None:
    deadline = time.monotonic() + 5
    while HUB.listeners(user_id) == 0:
        assert time.monotonic() < deadline, "the stream did not subscribe"
        time.sleep(0.005)


def test_a_notification_committed_by_another_transaction_arrives_at_once(hub: Hub) -> None:
    queue(hub, "engineer_x", "旧的")  # before the page opened: not news
    with served(hub.app) as base:
        reader = SseReader(base + STREAM, hub.headers("engineer_x"))
        listening(hub.users["engineer_x"].id)
        other = SseReader(base + STREAM, hub.headers("admin_x"))
        listening(hub.users["admin_x"].id)
        committed = time.monotonic()
        notification_id = queue(hub, "engineer_x")
        (received,) = reader.wait_for(1, 5)
        latency = reader.events[0][0] - committed
        reader.close()
        other.close()
    assert reader.status == 200
    assert received["id"] == notification_id and received["title"] == "水泵房压力低"
    assert received["kind"] == "alarm.raised" and received["data"] == {"alarm_id": 7}
    assert latency < 0.5, f"took {latency * 1000:.0f} ms: the commit should wake the stream"
    assert other.events == [], "another user's stream gets nothing"


def test_a_notification_from_another_hub_process_arrives_at_the_next_poll(hub: Hub) -> None:
    with served(hub.app) as base:
        reader = SseReader(base + STREAM, hub.headers("engineer_x"))
        listening(hub.users["engineer_x"].id)
        with session_factory(hub.engine).begin() as session:  # written as another process would: no wake-up here
            session.execute(
                insert(Notification),
                [
                    {
                        "created_at": T0,
                        "user_id": hub.users["engineer_x"].id,
                        "kind": "ticket.assigned",
                        "title": "派单",
                        "body": "b",
                        "data": {},
                        "attempts": 0,
                    }
                ],
            )
        (received,) = reader.wait_for(1, POLL_S + 2)
        reader.close()
    assert received["kind"] == "ticket.assigned"


def test_a_page_that_reconnects_gets_what_it_missed(hub: Hub) -> None:
    first = queue(hub, "engineer_x", "一")
    second = queue(hub, "engineer_x", "二")
    with served(hub.app) as base:
        reader = SseReader(base + STREAM, hub.headers("engineer_x") | {"Last-Event-ID": str(first - 1)})
        received = reader.wait_for(2, 5)
        reader.close()
    assert [n["id"] for n in received] == [first, second]


def test_the_stream_needs_a_signed_in_user_and_takes_the_console_cookie(hub: Hub) -> None:
    with served(hub.app) as base:
        assert httpx.get(base + STREAM, timeout=5).status_code == 401
        bad = httpx.get(base + STREAM, headers={"Authorization": "Bearer nonsense"}, timeout=5)
        assert bad.status_code == 401
        reader = SseReader(base + STREAM, {"Cookie": f"{SESSION_COOKIE}={hub.token('guard_x')}"})
        listening(hub.users["guard_x"].id)
        queue(hub, "guard_x")
        assert len(reader.wait_for(1, 5)) == 1
        reader.close()


def test_a_user_lists_and_marks_only_their_own_notifications(hub: Hub) -> None:
    mine = queue(hub, "engineer_x")
    theirs = queue(hub, "admin_x")
    listed = hub.get("engineer_x", "/api/v1/notifications", params={"unread": True}).json()
    assert [n["id"] for n in listed] == [mine]
    assert hub.client.post(f"/api/v1/notifications/{theirs}/read", headers=hub.headers("engineer_x")).status_code == 404
    read = hub.client.post(f"/api/v1/notifications/{mine}/read", headers=hub.headers("engineer_x"))
    assert read.status_code == 200 and read.json()["read_at"] is not None
    assert hub.get("engineer_x", "/api/v1/notifications", params={"unread": True}).json() == []
    marked = hub.client.post("/api/v1/notifications/read-all", headers=hub.headers("admin_x")).json()
    assert marked == {"marked": 1}
    assert hub.client.get("/api/v1/notifications").status_code == 401


def test_a_stream_ends_after_its_lifetime_so_the_token_is_checked_again(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "STREAM_MAX_S", 0.5)
    with served(hub.app) as base:
        started = time.monotonic()
        response = httpx.get(base + STREAM, headers=hub.headers("engineer_x"), timeout=10)
        lasted = time.monotonic() - started
    assert response.status_code == 200 and response.text.startswith("retry: 2000")
    assert lasted < 5, "the stream ended by itself; the browser reconnects and signs in again"
