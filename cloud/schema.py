"""The hub's schema: every domain's models, and the Alembic migrations that bring a database to them.

Importing this module registers every table on ``Base.metadata``; cloud/migrations/env.py relies on that for
autogenerate. There is no alembic.ini: the configuration is built here, in code, around the caller's connection.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from cloud.alarms import models as _alarms  # noqa: F401  (registers its tables)
from cloud.audit import models as _audit  # noqa: F401  (registers its tables)
from cloud.auth import models as _auth  # noqa: F401  (registers its tables)
from cloud.billing import models as _billing  # noqa: F401  (registers its tables)
from cloud.billing import rules as _billing_rules  # noqa: F401  (registers its tables)
from cloud.db import is_postgres
from cloud.ingest import models as _ingest  # noqa: F401  (registers its tables)
from cloud.maintenance import models as _maintenance  # noqa: F401  (registers its tables)
from cloud.notify import models as _notify  # noqa: F401  (registers its tables)
from cloud.patrol import models as _patrol  # noqa: F401  (registers its tables)
from cloud.payments import models as _payments  # noqa: F401  (registers its tables)
from cloud.registry import models as _registry  # noqa: F401  (registers its tables)
from cloud.tickets import models as _tickets  # noqa: F401  (registers its tables)
from cloud.timeseries import models as _timeseries  # noqa: F401  (registers its tables)

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x45485F534348454D  # "EH_SCHEM": one hub process migrates at a time (PostgreSQL advisory lock)

_BASELINE = "0001"
_BASELINE_TABLES = frozenset({
    "audit_log", "buildings", "dead_letters", "devices", "edge_state", "edges", "equipment", "events",
    "meter_serves", "meters", "owner_units", "point_mappings", "rollup_dirty", "rollup_hours", "samples",
    "series", "sites", "units", "user_sites", "users", "verification_codes",
})  # fmt: skip
"""What ``Base.metadata.create_all`` made before the hub had migrations: exactly revision 0001's tables."""


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration, in code; env.py migrates ``connection`` (its transaction is the caller's)."""
    config = Config(attributes={"connection": connection})
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def create_schema(engine: Engine) -> None:
    """Bring the database to the latest migration; a no-op when it is there already.

    All in one transaction. On PostgreSQL an advisory lock makes hub processes that start together migrate
    one after the other, and a failing migration leaves the database as it was (DDL is transactional there).
    """
    with engine.begin() as connection:
        if is_postgres(engine):
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        config = alembic_config(connection)
        _stamp_premigration_database(connection, config)
        command.upgrade(config, "head")


def _stamp_premigration_database(connection: Connection, config: Config) -> None:
    """Mark a database that create_all made (every 0001 table, no version table) as being at 0001.

    Without this, upgrading it would try to create tables it already has. A database with only some of the
    hub's tables is refused rather than guessed at.
    """
    tables = set(inspect(connection).get_table_names())
    if MigrationContext.configure(connection).get_current_revision() is not None or not tables & _BASELINE_TABLES:
        return
    if missing := sorted(_BASELINE_TABLES - tables):
        raise RuntimeError(
            f"the database has some of the hub's tables but not {', '.join(missing)}, and no migration "
            "history: it was not made by this hub; migrate it by hand (or start from an empty database)"
        )
    command.stamp(config, _BASELINE)


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: never migrated), for startup and health checks."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The latest migration in cloud/migrations/versions: what ``create_schema`` brings a database to."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS / 'versions'}")
    return head
