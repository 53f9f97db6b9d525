"""The seeded hub served with its console, plus two technicians of the demo site (a plumber and an electrician)
and a photo directory of the test's own."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.api.app import create_app
from cloud.auth.models import Role
from cloud.console.pages import mount_console
from cloud.db import session_factory
from cloud.tickets.models import Category
from cloud.tickets.technicians import upsert_technician
from tests.cloud.api.hub_app import PASSWORD, SETTINGS, Hub, add_user, hub

__all__ = ["hub", "desk", "signed_in", "PNG"]


def _png() -> bytes:
    """A valid 1x1 PNG, built here rather than stored as a binary file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00"))
        + chunk(b"IEND", b"")
    )


PNG = _png()
"""A 1x1 PNG: what a phone's photo is to the checks (magic bytes), small enough for a test."""


def signed_in(hub: Hub, name: str) -> TestClient:
    client = TestClient(hub.app)
    response = client.post("/console/login", data={"username": hub.users[name].username, "password": PASSWORD},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303
    return client


@pytest.fixture
def desk(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """The hub with its console; users ``plumber`` and ``electrician`` are technicians of the demo site."""
    monkeypatch.setenv("EH_TICKET_FILES_DIR", str(tmp_path / "ticket-files"))
    with session_factory(hub.engine).begin() as session:
        for name, skill in (("plumber", Category.PLUMBING), ("electrician", Category.ELECTRICAL)):
            user = add_user(session, name, Role.TECHNICIAN, sites=[hub.ids["site_x"]])
            tech = upsert_technician(session, user, hub.ids["site_x"], skills=[skill])
            hub.users[name] = user
            hub.ids[f"tech_{name}"] = tech.id
    app = create_app(SETTINGS, engine=hub.engine, sms_sender=hub.sms)
    mount_console(app)
    with TestClient(app):
        yield replace(hub, app=app)
