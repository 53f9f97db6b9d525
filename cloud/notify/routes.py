"""A signed-in user's own notifications: list, mark read, and a live stream (server-sent events).

The stream sends every notification of the user after the one the page last saw (``Last-Event-ID``, as
browsers resend it on reconnect, or ``?after=``), then waits: a commit in this process that queues one for
the user wakes it at once (cloud.notify.live), and it looks at the table every STREAM_POLL_S anyway, for
notifications queued by other hub processes. Browsers' EventSource cannot set headers, so the stream also
accepts the console's session cookie.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from cloud.api.deps import SESSION_COOKIE, CurrentUser, SessionDep, SettingsDep, user_from_token
from cloud.auth.models import User
from cloud.notify.live import HUB
from cloud.notify.models import Notification
from cloud.notify.schemas import NotificationOut, ReadOut

STREAM_POLL_S = 2.0
"""Longest a stream waits before looking at the table (and sending a keep-alive comment)."""
STREAM_BATCH = 100
STREAM_MAX_S = 900.0
"""A stream ends after this long; the browser reconnects at once (Last-Event-ID), and its token is checked
again, so a disabled account or a changed password stops receiving."""
LATE_COMMIT = timedelta(seconds=30)
"""How long after its creation a notification may still commit (and is looked for below the last id sent)."""

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("")
def list_notifications(
    session: SessionDep, user: CurrentUser, unread: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[NotificationOut]:
    """The user's notifications, newest first."""
    query = select(Notification).where(Notification.user_id == user.id)
    if unread:
        query = query.where(Notification.read_at.is_(None))
    rows = session.scalars(query.order_by(Notification.id.desc()).limit(limit))
    return [NotificationOut.model_validate(n) for n in rows]


@router.post("/{notification_id}/read")
def mark_read(notification_id: int, session: SessionDep, user: CurrentUser) -> NotificationOut:
    row = session.scalars(
        select(Notification).where(Notification.id == notification_id, Notification.user_id == user.id)
    ).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"notification {notification_id} not found")
    if row.read_at is None:
        row.read_at = datetime.now(UTC)
    return NotificationOut.model_validate(row)


@router.post("/read-all")
def mark_all_read(session: SessionDep, user: CurrentUser) -> ReadOut:
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=datetime.now(UTC))
    )
    return ReadOut(marked=result.rowcount)  # type: ignore[attr-defined]


def stream_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    """The bearer token's user, or the session cookie's (EventSource sends cookies, not headers)."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not signed in: send a bearer token or the session cookie",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return user_from_token(session, settings, token)


@router.get("/stream", response_class=StreamingResponse)
def stream(
    request: Request,
    user: Annotated[User, Depends(stream_user)],
    after: Annotated[int | None, Query(ge=0, description="send notifications after this id")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events: ``event: notification``, ``id: <notification id>``, ``data: <JSON>``."""
    start = after
    if start is None and last_event_id:
        if not last_event_id.isdigit():
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "Last-Event-ID must be a notification id")
        start = int(last_event_id)
    if start is None:  # from now on: the newest existing one is not news
        start = _newest(request.app.state.sessions, user.id)
    return StreamingResponse(
        _events(request, request.app.state.sessions, user.id, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, sessions: sessionmaker[Session], user_id: int, last: int) -> AsyncIterator[str]:
    sub = HUB.subscribe(user_id)
    floor, sent = last, dict[int, datetime]()
    ends = time.monotonic() + STREAM_MAX_S
    try:
        yield "retry: 2000\n\n"
        while time.monotonic() < ends and not await request.is_disconnected():
            sub.event.clear()
            now = datetime.now(UTC)
            for row in await run_in_threadpool(_after, sessions, user_id, floor, last, now - LATE_COMMIT, list(sent)):
                payload = NotificationOut.model_validate(row).model_dump(mode="json")
                yield f"id: {row.id}\nevent: notification\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
                last, sent[row.id] = max(last, row.id), now
            sent = {i: at for i, at in sent.items() if now - at < 2 * LATE_COMMIT}
            try:
                await asyncio.wait_for(sub.event.wait(), STREAM_POLL_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
    finally:
        HUB.unsubscribe(sub)


def _after(
    sessions: sessionmaker[Session], user_id: int, floor: int, last: int, recent: datetime, sent: list[int]
) -> list[Notification]:
    """After ``last``, and recent ones above ``floor`` not ``sent`` yet: a transaction that took a lower id may
    commit after a higher one was sent."""
    late = and_(Notification.id > floor, Notification.created_at >= recent, Notification.id.not_in(sent))
    with sessions() as session:
        return list(session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id, or_(Notification.id > last, late))
            .order_by(Notification.id)
            .limit(STREAM_BATCH)
        ))  # fmt: skip


def _newest(sessions: sessionmaker[Session], user_id: int) -> int:
    with sessions() as session:
        newest = session.scalar(select(Notification.id).where(Notification.user_id == user_id)
                                .order_by(Notification.id.desc()).limit(1))  # fmt: skip
    return newest or 0
