"""Database fixtures: every hub test runs on SQLite and on the real PostgreSQL.

``engine`` is a migrated, empty database. Creating, migrating and dropping a PostgreSQL database per test
costs seconds on a shared server (each drop waits for a checkpoint), so the session migrates one database per
backend once: SQLite tests get a copy of a migrated file; PostgreSQL tests share one migrated database that is
emptied (rows deleted, ids restarted, migration history kept) before each test. ``pg_url`` still gives a new,
empty, unmigrated database for tests of migrating itself.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from cloud.db import Base, make_engine
from cloud.schema import create_schema

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _pg_available() -> None:
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({exc}); start it (deploy/ensure-services.sh)")


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(sql)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    _pg_available()
    name = f"eh_test_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty, unmigrated database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'hub.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("migrated") / "hub.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """One migrated PostgreSQL database for the session, dropped at its end."""
    _pg_available()
    name = f"eh_test_migrated_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    try:
        yield url
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_database(url: str) -> None:
    """Delete every row the previous test left and restart ids (the migration history stays).

    Connections a previous test left open are ended first, so none of its locks holds this up. DELETE with
    foreign-key triggers off (session_replication_role) rather than TRUNCATE, which writes new files for
    every table and takes far longer here.
    """
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            for table in Base.metadata.sorted_tables:
                conn.execute(f'DELETE FROM "{table.name}"')  # names from the hub's own metadata
            for (sequence,) in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'S'").fetchall():
                conn.execute(f'ALTER SEQUENCE "{sequence}" RESTART WITH 1')


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "hub.sqlite"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("migrated_postgres")
    empty_database(url)
    return url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    """A migrated, empty database on both backends."""
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()
