"""A guard's report of something wrong at a checkpoint (a broken lock, a leak): a ticket, with the photo.

The page's reference makes the report idempotent: sending it again (a retry after a lost reply) opens no
second ticket and attaches no second copy of the photo. The photo goes straight to the ticket's photo store:
``tickets.services.attach_photo`` admits only owner reporters and staff who work tickets, not guards; the
guard's right to report was checked by the patrol route (guard of the checkpoint's site).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from cloud.auth.models import User
from cloud.patrol.models import Checkpoint
from cloud.tickets.attachments import AttachmentStore
from cloud.tickets.models import Attachment, Ticket
from cloud.tickets.services import open_from_patrol


def report_exception(
    session: Session, store: AttachmentStore, user: User, checkpoint: Checkpoint, note: str, client_ref: str,
    photo: tuple[str, bytes] | None, now: datetime,
) -> Ticket:  # fmt: skip
    where = "，".join(p for p in (checkpoint.name, checkpoint.location) if p)
    ticket = open_from_patrol(
        session, site_id=checkpoint.site_id, exception_ref=f"{user.id}:{client_ref}",
        title=f"巡更异常：{checkpoint.name}", description=f"{where}：{note}", now=now,
        building_id=checkpoint.building_id, reporter_id=user.id,
    )  # fmt: skip
    if photo is not None:
        filename, data = photo
        digest = hashlib.sha256(data).hexdigest()
        if not session.scalar(select(exists().where(Attachment.ticket_id == ticket.id, Attachment.sha256 == digest))):
            store.save(session, ticket, user, filename, data, now)
    return ticket
