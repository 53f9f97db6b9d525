"""Migrations: from empty to head, down and up again, and a migrated database that matches the models exactly.

A model changed without a migration fails ``test_migrated_schema_matches_the_models`` (or, for CHECK constraints
and enum values, which Alembic does not compare, ``test_check_constraints_match_the_models``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from cloud.db import Base, is_postgres, make_engine
from cloud.schema import MIGRATIONS, alembic_config, create_schema, current_revision, head_revision

HUB_TABLES = set(Base.metadata.tables)


def run_alembic(engine: Engine, action: Callable[[Config, str], None], revision: str) -> None:
    with engine.begin() as connection:
        action(alembic_config(connection), revision)


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, Base.metadata))


def assert_matches_models(engine: Engine) -> None:
    differences = schema_differences(engine)
    assert not differences, (
        f"the migrated schema differs from the models: {differences}; a model changed without a migration? "
        'Write one with: .venv/bin/python -m cloud.migrations "what changed"'
    )


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A database of its own, migrated: these tests downgrade and alter it, so not the session's shared one."""
    engine = make_engine(db_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def fresh(db_url: str) -> Iterator[Engine]:
    """An empty database (the ``engine`` fixture is migrated already)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def test_upgrade_from_empty_reaches_head(fresh: Engine) -> None:
    assert current_revision(fresh) is None
    create_schema(fresh)
    assert current_revision(fresh) == head_revision()
    assert table_names(fresh) == HUB_TABLES | {"alembic_version"}


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    assert_matches_models(engine)


def check_constraints(connection: Connection, schema: str | None = None) -> dict[str, list[tuple[str, str]]]:
    inspector = inspect(connection)
    return {
        table: sorted((check["name"], check["sqltext"]) for check in inspector.get_check_constraints(table, schema))
        for table in sorted(HUB_TABLES)
    }


def test_check_constraints_match_the_models(engine: Engine, tmp_path: Path) -> None:
    """Each CHECK (enum values included) as the database reports it, against the same database's create_all."""
    with engine.begin() as connection:
        if is_postgres(engine):
            connection.execute(text("CREATE SCHEMA reference"))
        else:
            connection.execute(text(f"ATTACH DATABASE '{tmp_path / 'reference.sqlite'}' AS reference"))
        Base.metadata.create_all(connection.execution_options(schema_translate_map={None: "reference"}))
        migrated, reference = check_constraints(connection), check_constraints(connection, "reference")
    assert migrated["meters"], "no CHECK constraints reflected: the comparison would prove nothing"
    assert migrated == reference


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:
    run_alembic(engine, command.downgrade, "base")
    assert current_revision(engine) is None
    assert table_names(engine) == {"alembic_version"}
    if is_postgres(engine):
        with engine.connect() as connection:
            enums = connection.execute(text("SELECT typname FROM pg_type WHERE typtype = 'e'")).scalars().all()
            sequences = connection.execute(text("SELECT sequencename FROM pg_sequences")).scalars().all()
        assert (enums, sequences) == ([], []), "types or sequences outlived their tables"
    create_schema(engine)
    assert current_revision(engine) == head_revision()
    assert_matches_models(engine)


def test_every_revision_downgrades_and_upgrades_again(fresh: Engine) -> None:
    """The stairway: each migration up, down one step, and up again, so every downgrade is exercised."""
    revisions = list(ScriptDirectory(str(MIGRATIONS)).walk_revisions("base", "heads"))
    for revision in reversed(revisions):
        run_alembic(fresh, command.upgrade, revision.revision)
        run_alembic(fresh, command.downgrade, "-1")
        assert current_revision(fresh) == revision.down_revision
        run_alembic(fresh, command.upgrade, revision.revision)
    assert current_revision(fresh) == head_revision()
    assert_matches_models(fresh)


def test_create_schema_twice_is_harmless(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO sites (code, name) VALUES ('s1', 'Site 1')"))
    create_schema(engine)
    create_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT code FROM sites")).scalars().all() == ["s1"]
    assert_matches_models(engine)


def test_a_database_made_by_create_all_before_migrations_is_adopted(fresh: Engine) -> None:
    """Such a database has revision 0001's tables and no version table: it is stamped, not created again."""
    run_alembic(fresh, command.upgrade, "0001")
    with fresh.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(text("INSERT INTO sites (code, name) VALUES ('s1', 'Site 1')"))
    create_schema(fresh)
    assert current_revision(fresh) == head_revision()
    with fresh.connect() as connection:
        assert connection.execute(text("SELECT code FROM sites")).scalars().all() == ["s1"]
    assert_matches_models(fresh)


def test_a_database_with_some_hub_tables_and_no_history_is_refused(fresh: Engine) -> None:
    with fresh.begin() as connection:
        connection.execute(text("CREATE TABLE series (id INTEGER PRIMARY KEY)"))
    with pytest.raises(RuntimeError, match="has some of the hub's tables but not audit_log, buildings"):
        create_schema(fresh)
    assert current_revision(fresh) is None


def test_hub_processes_starting_together_migrate_one_after_the_other(pg_url: str) -> None:
    """Replicas sharing one PostgreSQL all call create_schema at startup; the advisory lock serialises them."""
    engine = make_engine(pg_url)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def migrate() -> None:
        start.wait()
        try:
            create_schema(engine)
        except Exception as exc:  # reported by the assertion below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
