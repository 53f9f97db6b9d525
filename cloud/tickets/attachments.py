"""Ticket photos on disk: checked by their bytes (JPEG, PNG or WebP, whatever the upload claims) and size,
stored under a random name in the configured directory, and served only through the scoped ticket route.

The directory is ``EH_TICKET_FILES_DIR`` (default ``ticket-files`` beside the hub's working directory).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import datetime
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cloud.auth.models import User
from cloud.tickets.models import Attachment, Ticket, TicketState
from cloud.tickets.states import TicketError

MAX_PHOTOS_PER_TICKET = 20
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", ".png"),
    (b"WEBP", 8, "image/webp", ".webp"),
)
"""(magic bytes, offset, content type, extension): what counts as a photo."""


class TicketFileSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EH_TICKET_FILES_")

    dir: Path = Path("ticket-files")
    max_bytes: int = DEFAULT_MAX_BYTES


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) of a JPEG, PNG or WebP image; None for anything else."""
    for magic, offset, content_type, ext in SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (content_type != "image/webp" or data[:4] == b"RIFF"):
            return content_type, ext
    return None


class AttachmentStore:
    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    @classmethod
    def from_env(cls) -> AttachmentStore:
        settings = TicketFileSettings()
        return cls(settings.dir, settings.max_bytes)

    def path(self, attachment: Attachment) -> Path:
        return self.directory / attachment.storage_key

    def save(
        self, session: Session, ticket: Ticket, user: User, filename: str, data: bytes, now: datetime
    ) -> Attachment:
        """Check and store one photo, then record it; a refused upload writes nothing."""
        if ticket.state in (TicketState.CLOSED, TicketState.CANCELLED):
            raise TicketError(f"ticket {ticket.id} is {ticket.state.value}: it takes no more photos", status=409)
        if not data:
            raise TicketError("the upload is empty: choose a photo", status=422)
        if len(data) > self.max_bytes:
            raise TicketError(
                f"the photo is {len(data)} bytes; the largest accepted is {self.max_bytes} bytes", status=413
            )
        kind = sniff(data)
        if kind is None:
            raise TicketError("only JPEG, PNG or WebP photos are accepted", status=415)
        count = session.scalar(select(func.count()).where(Attachment.ticket_id == ticket.id)) or 0
        if count >= MAX_PHOTOS_PER_TICKET:
            raise TicketError(f"ticket {ticket.id} has {count} photos already, the most it takes", status=409)
        content_type, ext = kind
        key = f"{uuid.uuid4().hex}{ext}"
        self._write(key, data)
        row = Attachment(
            ticket_id=ticket.id,
            uploaded_by=user.id,
            filename=Path(filename or "photo").name[:200],
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            storage_key=key,
            at=now,
        )
        session.add(row)
        session.flush()
        return row

    def _write(self, key: str, data: bytes) -> None:
        """Written whole or not at all (temporary file, fsync, rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{key}.part"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.directory / key)
