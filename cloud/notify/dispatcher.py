"""Delivers the ``notifications`` outbox over the external channels, apart per channel, with retries.

Two steps, each in its own short transaction so no lock is held while a channel is slow:
- routing gives each new notification one delivery row per channel it goes to (MQTT and webhook when
  configured; SMS for people without an account and for the kinds listed in ``sms_kinds``); one with none is
  done at once (live push needs no row: pages read the table);
- each channel's thread claims its due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's write lock),
  leases them for LEASE_S, sends, then marks them delivered or due again after a backoff; after MAX_ATTEMPTS
  (or an error retrying cannot fix) it gives up and keeps the error. Two replicas never claim the same row; a
  replica that dies mid-send leaves a lease that expires, so the row is sent again (at least once).

A notification is ``delivered_at`` once every one of its deliveries is. Each thread wakes right after a commit
in this process queued a notification (cloud.notify.live.DISPATCH) and polls every ``poll_s`` besides.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, exists, insert, select
from sqlalchemy.orm import Session

from cloud.auth.models import User
from cloud.db import is_postgres, session_factory
from cloud.notify.channels import Outgoing, Sender, Undeliverable
from cloud.notify.live import DISPATCH
from cloud.notify.models import Channel, Delivery, Notification
from cloud.registry.models import Site

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0
MAX_ATTEMPTS = 8
LEASE_S = 60.0
BATCH = 50
POLL_S = 5.0
T = TypeVar("T", bound=Any)


def backoff(attempts: int) -> timedelta:
    """2 s, 4 s, 8 s ... up to 5 min after the n-th failed attempt."""
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** (attempts - 1), BACKOFF_MAX_S))


class Dispatcher:
    def __init__(self, engine: Engine, senders: Sequence[Sender], *, sms_kinds: Sequence[str] = (),
                 poll_s: float = POLL_S) -> None:  # fmt: skip
        self._engine = engine
        self._postgres = is_postgres(engine)
        self._sessions = session_factory(engine)
        self._senders = {s.channel: s for s in senders}
        self._sms_kinds = tuple(sms_kinds)
        self._poll_s = poll_s

    @property
    def channels(self) -> list[Channel]:
        return list(self._senders)

    def channels_for(self, notification: Notification) -> list[Channel]:
        out = [c for c in (Channel.MQTT, Channel.WEBHOOK) if c in self._senders]
        wants_sms = notification.user_id is None or notification.kind.startswith(self._sms_kinds)
        if Channel.SMS in self._senders and wants_sms:
            out.append(Channel.SMS)
        return out

    # --- routing ---------------------------------------------------------------------------------------------

    def route(self, now: datetime | None = None) -> int:
        """Give new notifications their delivery rows; returns how many were routed."""
        now = now or datetime.now(UTC)
        unrouted = (Notification.delivered_at.is_(None),
                    ~exists(select(Delivery.id).where(Delivery.notification_id == Notification.id)))  # fmt: skip
        with self._engine.connect() as conn:
            if conn.scalar(select(Notification.id).where(*unrouted).limit(1)) is None:
                return 0
        with self._sessions.begin() as session:
            query = select(Notification).where(*unrouted).order_by(Notification.id).limit(BATCH)
            rows = session.scalars(self._claim(session, query, Notification)).all()
            deliveries = []
            for row in rows:
                channels = self.channels_for(row)
                if not channels:
                    row.delivered_at = now
                deliveries += [{"notification_id": row.id, "channel": c, "next_attempt_at": now, "attempts": 0}
                               for c in channels]  # fmt: skip
            if deliveries:
                session.execute(insert(Delivery), deliveries)
            return len(rows)

    def _claim(self, session: Session, query: Select[T], of: type[Any]) -> Select[T]:
        """Rows this transaction alone may work on: SKIP LOCKED on PostgreSQL, SQLite's one write lock."""
        if self._postgres:
            return query.with_for_update(skip_locked=True, of=of)
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        return query

    # --- delivering ------------------------------------------------------------------------------------------

    def deliver(self, channel: Channel, now: datetime | None = None) -> int:
        """Send the channel's due deliveries; returns how many were attempted."""
        now = now or datetime.now(UTC)
        sender = self._senders[channel]
        due = (Delivery.channel == channel, Delivery.delivered_at.is_(None), Delivery.failed_at.is_(None),
               Delivery.next_attempt_at <= now)  # fmt: skip
        with self._engine.connect() as conn:
            if conn.scalar(select(Delivery.id).where(*due).limit(1)) is None:
                return 0
        with self._sessions.begin() as session:
            query = select(Delivery).where(*due).order_by(Delivery.next_attempt_at, Delivery.id).limit(BATCH)
            claimed = session.scalars(self._claim(session, query, Delivery)).all()
            for d in claimed:
                d.attempts += 1
                d.next_attempt_at = now + timedelta(seconds=LEASE_S)
            items = _outgoing(session, [d.notification_id for d in claimed])
            work = [(d.id, d.attempts, items[d.notification_id]) for d in claimed]
        results: list[tuple[int, int, str | None, bool]] = []
        for delivery_id, attempts, item in work:
            try:
                sender.send(item)
                results.append((delivery_id, attempts, None, False))
            except Undeliverable as exc:
                results.append((delivery_id, attempts, str(exc), True))
            except Exception as exc:
                log.warning("notify: %s delivery of notification %d failed (attempt %d): %s", channel.value, item.id,
                            attempts, exc)  # fmt: skip
                results.append((delivery_id, attempts, str(exc) or type(exc).__name__, attempts >= MAX_ATTEMPTS))
        self._settle(results, now)
        return len(work)

    def _settle(self, results: list[tuple[int, int, str | None, bool]], now: datetime) -> None:
        with self._sessions.begin() as session:
            touched = set()
            for delivery_id, attempts, error, give_up in results:
                d = session.get(Delivery, delivery_id, with_for_update=True)
                if d is None:
                    continue
                touched.add(d.notification_id)
                d.last_error = error[:500] if error else None
                if error is None:
                    d.delivered_at = now
                elif give_up:
                    d.failed_at = now
                else:
                    d.next_attempt_at = now + backoff(attempts)
            for notification_id in sorted(touched):
                _settle_notification(session, notification_id, now)

    # --- the loop --------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """One thread per channel until ``stop`` is set; routing happens in each of them."""
        threads = [threading.Thread(target=self._loop, args=(c, stop), name=f"notify-{c.value}", daemon=True)
                   for c in self._senders]  # fmt: skip
        for t in threads:
            t.start()
        stop.wait()
        DISPATCH.set()  # the threads wait on it: they see stop now rather than at their next poll
        for t in threads:
            t.join()

    def _loop(self, channel: Channel, stop: threading.Event) -> None:
        while not stop.is_set():
            seen = DISPATCH.generation
            try:
                self.route()
                if self.deliver(channel):
                    continue
            except Exception:
                log.exception("notify: the %s dispatcher failed; retrying in %.0f s", channel.value, self._poll_s)
            DISPATCH.wait_after(seen, self._poll_s)


def _outgoing(session: Session, ids: list[int]) -> dict[int, Outgoing]:
    rows = session.execute(
        select(Notification, Site.code, User.phone)
        .outerjoin(Site, Site.id == Notification.site_id)
        .outerjoin(User, User.id == Notification.user_id)
        .where(Notification.id.in_(ids))
    ).all()
    return {
        n.id: Outgoing(n.id, n.kind, n.title, n.body, n.data, n.created_at, site, n.user_id, n.phone or phone)
        for n, site, phone in rows
    }


def _settle_notification(session: Session, notification_id: int, now: datetime) -> None:
    """Delivered once every channel is; the last error and the attempts so far are kept on it."""
    n = session.get(Notification, notification_id, with_for_update=True)
    if n is None:
        return
    deliveries = session.scalars(select(Delivery).where(Delivery.notification_id == notification_id)).all()
    n.attempts = max((d.attempts for d in deliveries), default=0)
    errors = [f"{d.channel.value}: {d.last_error}" for d in deliveries if d.last_error]
    n.last_error = "; ".join(errors)[:500] or None
    if deliveries and all(d.delivered_at is not None for d in deliveries):
        n.delivered_at = now
