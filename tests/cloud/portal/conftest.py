"""The seeded hub with its console and portal mounted, bills for owner A and owner B, and the demo payment
provider posting its webhook through the test client (mock: no real payment provider here)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.api.deps import SESSION_COOKIE
from cloud.console.pages import mount_console
from cloud.db import session_factory
from cloud.payments.providers import DemoProvider
from tests.cloud.api.hub_app import SETTINGS, Hub, hub
from tests.cloud.portal.bills import issue_bill

__all__ = ["hub", "portal", "signed_in"]
WEBHOOK_SECRET = b"portal-test-webhook-secret-0123456789"


@dataclass
class Portal:
    hub: Hub
    app_client: TestClient
    bill_a: int
    bill_b: int
    bill_y: int

    @property
    def ids(self) -> dict[str, int]:
        return self.hub.ids


def signed_in(portal: Portal, name: str) -> TestClient:
    """A browser-like client holding the user's session cookie (the sign-in form itself is tested once, in
    test_an_owner_signs_in_on_the_console_and_finds_the_portal: password hashing is slow on purpose)."""
    client = TestClient(portal.hub.app)
    client.cookies.set(SESSION_COOKIE, portal.hub.token(name))
    return client


@pytest.fixture
def portal(hub: Hub) -> Iterator[Portal]:
    app = create_app(SETTINGS, engine=hub.engine, sms_sender=hub.sms)
    mount_console(app)
    with TestClient(app) as client:

        def post_webhook(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
            response = client.post(url, content=body, headers=headers)
            return response.status_code, response.text

        app.state.payment_providers = {"demo": DemoProvider(WEBHOOK_SECRET, sender=post_webhook)}
        with session_factory(hub.engine).begin() as session:
            due = date(2099, 1, 1)
            bills = [issue_bill(session, hub.ids[u], "2026-03", due).id for u in ("unit_a", "unit_b", "unit_y")]
        yield Portal(replace(hub, app=app), client, *bills)
