"""Alembic environment: migrates the connection that cloud.schema hands over in ``config.attributes``.

There is no alembic.ini and no URL here, so the hub, the tests and ``python -m cloud.migrations`` all migrate
exactly the engine they were given, SQLite or PostgreSQL.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

from cloud import schema  # noqa: F401  (imports every domain's models, so the metadata below is complete)
from cloud.db import Base


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render column types so that the migration runs as written.

    The hub's own types (UtcDateTime) become the type they store, since a migration imports no models (they
    change after it). JSONB is spelled out because, generated against SQLite, Alembic would render it with an
    unimported ``Text()``.
    """
    if type_ != "type":
        return False
    if isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    if isinstance(obj, JSONB):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "postgresql.JSONB()"
    return False


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("migrations run through cloud.schema (create_schema), which passes the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters a table by copying it: batch operations do, and ALTER elsewhere
    render_item=render_item,
    compare_type=True,
    compare_server_default=True,
)
with context.begin_transaction():
    context.run_migrations()
