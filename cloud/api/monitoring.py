"""Edge health for the people who look after edges: liveness, outbox backlog, seq gaps, and the messages
the hub refused (dead letters). Read from cloud.ingest's edge_state and dead_letters tables."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from cloud.api.deps import OPERATIONS, EdgeDep, ScopeDep, SessionDep, require_roles
from cloud.ingest.models import DeadLetter, EdgeStateRow
from cloud.registry.models import Edge, Site

router = APIRouter(dependencies=[Depends(require_roles(*OPERATIONS))])
PREVIEW_CHARS = 500


class EdgeStatus(BaseModel):
    id: int
    site_id: int
    code: str
    online: bool | None
    """None until the edge has sent a status."""
    last_seen: datetime | None
    status_at: datetime | None
    backlog: int | None
    """Records waiting in the edge's outbox, as of its last status."""
    dropped_total: int
    acked_through: int
    gaps: list[list[int]]
    """Seq ranges missing below the highest stored: late, or lost."""
    missing: int
    agent_version: str | None
    config_version: str | None


class EdgeDetail(EdgeStatus):
    links: dict[str, Any]
    """Link health per device, from the last status."""


class DeadLetterPublic(BaseModel):
    id: int
    received_at: datetime
    topic: str
    reason: str
    size: int
    site: str | None
    edge: str | None
    preview: str
    """The start of the payload as text (undecodable bytes replaced)."""


class DeadLetterDetail(DeadLetterPublic):
    payload_base64: str
    """The payload as kept (cut to the ingest's limit; ``size`` is the original)."""


def _status(edge: Edge, state: EdgeStateRow | None) -> dict[str, Any]:
    last = (state.last_status if state else None) or {}
    gaps = state.gaps() if state else []
    return {
        "id": edge.id, "site_id": edge.site_id, "code": edge.code, "online": state.online if state else None,
        "last_seen": state.last_seen if state else None, "status_at": state.status_at if state else None,
        "backlog": last.get("backlog"), "dropped_total": state.dropped_total if state else 0,
        "acked_through": state.acked_through if state else 0, "gaps": gaps,
        "missing": sum(b - a + 1 for a, b in gaps), "agent_version": last.get("agent_version"),
        "config_version": last.get("config_version"), "links": last.get("links", {}),
    }  # fmt: skip


def _with_state(session: Session, edges: list[Edge]) -> list[tuple[Edge, EdgeStateRow | None]]:
    sites = dict(session.execute(select(Site.id, Site.code).where(Site.id.in_({e.site_id for e in edges}))).all())
    keys = {(sites[e.site_id], e.code) for e in edges}
    states: dict[tuple[str, str], EdgeStateRow] = {}
    if keys:
        for state in session.scalars(select(EdgeStateRow).where(EdgeStateRow.edge.in_({k[1] for k in keys}))):
            if (state.site, state.edge) in keys:
                states[(state.site, state.edge)] = state
    return [(e, states.get((sites[e.site_id], e.code))) for e in edges]


@router.get("/edges", tags=["edges"])
def list_edges(session: SessionDep, scope: ScopeDep, site_id: int | None = None) -> list[EdgeStatus]:
    """Registered edges with their status; an edge that never connected shows online None."""
    stmt = select(Edge).where(scope.where(Edge)).order_by(Edge.site_id, Edge.code)
    if site_id is not None:
        stmt = stmt.where(Edge.site_id == site_id)
    return [EdgeStatus.model_validate(_status(e, s)) for e, s in _with_state(session, list(session.scalars(stmt)))]


@router.get("/edges/{edge_id}", tags=["edges"])
def get_edge(edge: EdgeDep, session: SessionDep) -> EdgeDetail:
    ((_, state),) = _with_state(session, [edge])
    return EdgeDetail.model_validate(_status(edge, state))


def _dead_letter(row: DeadLetter) -> dict[str, Any]:
    return {
        "id": row.id, "received_at": row.received_at, "topic": row.topic, "reason": row.reason,
        "size": row.size, "site": row.site, "edge": row.edge,
        "preview": row.payload[: PREVIEW_CHARS * 4].decode("utf-8", "replace")[:PREVIEW_CHARS],
    }  # fmt: skip


@router.get("/dead-letters", tags=["dead letters"])
def list_dead_letters(
    session: SessionDep,
    scope: ScopeDep,
    site_id: int | None = None,
    edge: str | None = None,
    before_id: Annotated[int | None, Query(description="Page: the smallest id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterPublic]:
    """Newest first. Messages whose topic named no site are shown to admins with every site only."""
    stmt = select(DeadLetter).where(scope.where(DeadLetter)).order_by(DeadLetter.id.desc()).limit(limit)
    if site_id is not None:
        stmt = stmt.join(Site, and_(Site.code == DeadLetter.site, Site.id == site_id))
    if edge is not None:
        stmt = stmt.where(DeadLetter.edge == edge)
    if before_id is not None:
        stmt = stmt.where(DeadLetter.id < before_id)
    return [DeadLetterPublic.model_validate(_dead_letter(r)) for r in session.scalars(stmt)]


@router.get("/dead-letters/{dead_letter_id}", tags=["dead letters"])
def get_dead_letter(dead_letter_id: int, session: SessionDep, scope: ScopeDep) -> DeadLetterDetail:
    row = scope.get(session, DeadLetter, dead_letter_id)
    return DeadLetterDetail.model_validate(
        {**_dead_letter(row), "payload_base64": base64.b64encode(row.payload).decode()}
    )
