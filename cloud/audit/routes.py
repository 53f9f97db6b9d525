"""Reading the audit log (admins with every site)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cloud.api.deps import SessionDep, require_roles
from cloud.audit.schemas import AuditPublic
from cloud.audit.services import query
from cloud.auth.models import Role

router = APIRouter()


@router.get("/audit", tags=["audit"], dependencies=[Depends(require_roles(Role.ADMIN, all_sites=True))])
def list_audit(
    session: SessionDep,
    entity: str | None = None,
    entity_id: int | None = None,
    actor: str | None = None,
    site_id: int | None = None,
    before_id: Annotated[int | None, Query(description="Page: the smallest id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditPublic]:
    """Newest first."""
    rows = session.scalars(query(entity, entity_id, actor, site_id, before_id, limit))
    return [AuditPublic.model_validate(r) for r in rows]
