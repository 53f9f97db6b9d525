"""Writing audit entries: one per changed entity, with JSON snapshots, inside the caller's transaction.

Entries are written in the same transaction as the change, so a rolled-back change leaves no entry and a
committed one always has its entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, cast

from sqlalchemy import Select, Table, insert, select
from sqlalchemy.orm import Session

from cloud.audit.models import AuditEntry

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a signed-in user, or an operator at the command line."""

    name: str
    user_id: int | None = None


@dataclass(frozen=True)
class Change:
    action: Action
    entity: str
    entity_id: int | None
    label: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    site_id: int | None = None


def json_value(value: Any) -> Any:
    """A JSON-safe form of a column value (decimals as strings so no cent is lost)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        items = [json_value(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return value


def snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: json_value(v) for k, v in values.items()}


def record(session: Session, actor: Actor, changes: Iterable[Change], at: datetime | None = None) -> int:
    """Write one entry per change (in bulk); updates that change nothing are skipped. Returns the count."""
    at = at or datetime.now(UTC)
    rows = []
    for c in changes:
        before = snapshot(c.before) if c.before is not None else None
        after = snapshot(c.after) if c.after is not None else None
        if c.action == "update" and before == after:
            continue
        rows.append(
            {
                "at": at,
                "actor": actor.name,
                "actor_id": actor.user_id,
                "action": c.action,
                "entity": c.entity,
                "entity_id": c.entity_id,
                "label": c.label,
                "site_id": c.site_id,
                "before": before,
                "after": after,
            }
        )
    if rows:
        session.execute(insert(cast(Table, AuditEntry.__table__)), rows)
    return len(rows)


def query(
    entity: str | None = None,
    entity_id: int | None = None,
    actor: str | None = None,
    site_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> Select[AuditEntry]:
    """Newest first; page with ``before_id`` (the smallest id of the previous page)."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity is not None:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if site_id is not None:
        stmt = stmt.where(AuditEntry.site_id == site_id)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return stmt
