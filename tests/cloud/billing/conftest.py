"""Billing tests: the seeded API hub (tests/cloud/api/hub_app.py) on both databases or on SQLite only, a
PostgreSQL-only engine for races, and a SQLite-only engine for checks that do not depend on the database
(each fresh PostgreSQL database costs seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cloud.api.app import create_app
from cloud.db import make_engine
from cloud.schema import create_schema
from tests.cloud.api.hub_app import SETTINGS, CapturedSms, Hub, hub, seed

__all__ = ["hub", "pg_engine", "sqlite_engine", "sqlite_hub"]


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_hub(sqlite_engine: Engine) -> Iterator[Hub]:
    """The seeded hub on SQLite only, for API checks whose outcome does not depend on the database."""
    users, ids = seed(sqlite_engine)
    sms = CapturedSms()
    app = create_app(SETTINGS, engine=sqlite_engine, sms_sender=sms)
    with TestClient(app) as client:
        yield Hub(sqlite_engine, app, client, sms, users, ids)
