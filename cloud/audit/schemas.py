"""Audit entries as the API returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    actor_id: int | None
    action: str
    entity: str
    entity_id: int | None
    label: str
    """Human key: site/code for registry rows, the username for users."""
    site_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
