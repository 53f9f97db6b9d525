"""What the API shows of a notification."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    site_id: int | None
    read_at: datetime | None


class ReadOut(BaseModel):
    marked: int
