"""Photos of a maintenance task (the gauge, the worn belt), kept with the task.

They are checked exactly as ticket photos are (``cloud.tickets.attachments``: JPEG, PNG or WebP by their bytes,
the same size limit) and live in the same configured directory, under ``maintenance/``, by a random name.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cloud.auth.models import User
from cloud.maintenance.models import MaintenanceTask
from cloud.maintenance.services import MaintenanceError, lock_task, may_do
from cloud.tickets.attachments import AttachmentStore, sniff

MAX_PHOTOS_PER_TASK = 10
SUBDIR = "maintenance"


def add_photo(
    session: Session, store: AttachmentStore, task_id: int, user: User, filename: str, data: bytes, now: datetime
) -> dict[str, Any]:
    """Check and store one photo, then record it on the task (locked, so concurrent uploads count right)."""
    task = lock_task(session, task_id)
    if not may_do(user, task):
        raise MaintenanceError("only the assigned technician, an engineer or an admin may add photos", 403)
    if not data:
        raise MaintenanceError("the upload is empty: choose a photo")
    if len(data) > store.max_bytes:
        raise MaintenanceError(f"the photo is {len(data)} bytes; the largest accepted is {store.max_bytes} bytes", 413)
    kind = sniff(data)
    if kind is None:
        raise MaintenanceError("only JPEG, PNG or WebP photos are accepted", 415)
    if len(task.photos) >= MAX_PHOTOS_PER_TASK:
        raise MaintenanceError(f"task {task.id} has {len(task.photos)} photos already, the most it takes", 409)
    content_type, ext = kind
    key = f"{uuid.uuid4().hex}{ext}"
    _write(store.directory / SUBDIR, key, data)
    photo = {
        "key": key, "filename": Path(filename or "photo").name[:200], "content_type": content_type,
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "by": user.id, "at": now.isoformat(),
    }  # fmt: skip
    task.photos = [*task.photos, photo]
    session.flush()
    return photo


def photo_file(store: AttachmentStore, task: MaintenanceTask, index: int) -> tuple[Path, str] | None:
    """(path, content type) of the task's ``index``-th photo, None if there is no such stored file."""
    if not 0 <= index < len(task.photos):
        return None
    photo = task.photos[index]
    path = store.directory / SUBDIR / str(photo["key"])
    return (path, str(photo["content_type"])) if path.is_file() else None


def _write(directory: Path, key: str, data: bytes) -> None:
    """Whole or not at all: a temporary file, fsync, rename."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{key}.part"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(directory / key)
