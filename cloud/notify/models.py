"""The notification outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, Json, UtcDateTime, string_enum


class Notification(Base):
    """One message to one person. ``dedupe_key`` (unique) makes "tell them once" a database guarantee:
    a reminder job that runs twice does not remind twice."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    """For people without an account (an owner not yet bound): SMS only."""
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    """Dotted, domain first: ``bill.due_soon``, ``ticket.assigned``, ``patrol.missed``."""
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """Ids a page or integration needs to act on it (bill_id, ticket_id, ...)."""
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the user marked it read on a page (the live channel is the database row itself)."""


class Channel(StrEnum):
    """Channels the dispatcher sends over; live push needs no delivery row (pages read the table)."""

    MQTT = "mqtt"
    WEBHOOK = "webhook"
    SMS = "sms"


class Delivery(Base):
    """One notification over one channel: retried with backoff until sent or given up, apart from the
    other channels, so a failing webhook delays nothing else."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (UniqueConstraint("notification_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"), index=True)
    channel: Mapped[Channel] = mapped_column(string_enum(Channel, "notify_channel"))
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """Given up after the last attempt."""
    last_error: Mapped[str | None] = mapped_column(String(500))
