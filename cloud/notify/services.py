"""Queueing a notification, inside the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, exists, select
from sqlalchemy.orm import Session

from cloud.notify.live import DISPATCH, HUB
from cloud.notify.models import Notification

_QUEUED = "notify.queued_for"
"""session.info key: users with notifications queued in the open transaction."""


def notify(
    session: Session,
    *,
    kind: str,
    title: str,
    body: str,
    user_id: int | None = None,
    phone: str | None = None,
    site_id: int | None = None,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> Notification | None:
    """Queue one notification; None when ``dedupe_key`` was queued before (it is sent once, ever)."""
    if user_id is None and phone is None:
        raise ValueError("a notification needs a user or a phone number to go to")
    if dedupe_key is not None and session.scalar(select(exists().where(Notification.dedupe_key == dedupe_key))):
        return None
    row = Notification(
        created_at=now or datetime.now(UTC), user_id=user_id, phone=phone, site_id=site_id, kind=kind,
        title=title, body=body, data=data or {}, dedupe_key=dedupe_key, attempts=0,
    )  # fmt: skip
    session.add(row)
    session.flush()
    _wake_after_commit(session, user_id)
    return row


def _wake_after_commit(session: Session, user_id: int | None) -> None:
    """Once the caller commits, wake this process's live streams of the user and its dispatcher, so a
    notification is on the page within milliseconds instead of at the next poll."""
    queued: set[int] = session.info.setdefault(_QUEUED, set())
    if user_id is not None:
        queued.add(user_id)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    """Registered once for every session (not per session: adding a listener while SQLAlchemy runs a
    session's listeners fails with "deque mutated during iteration")."""
    users = session.info.pop(_QUEUED, None)
    if users is not None:
        HUB.publish(users)
        DISPATCH.set()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_QUEUED, None)
