"""Patrol tables: signing keys, checkpoints, routes, plans, the rounds generated from plans, and scans.

A round's checkpoints (``patrol_round_checkpoints``) carry their own time windows, fixed when the round is
generated, so editing a plan never rewrites the history of rounds already walked or missed.
"""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, Json, SiteOwned, UtcDateTime, string_enum


class CheckpointMethod(StrEnum):
    SCANNER = "scanner"
    """A fixed scanner at the checkpoint (on an edge) reads the guard's badge."""
    QR = "qr"
    """The guard's phone scans the checkpoint's QR code."""


class Recurrence(StrEnum):
    DAILY = "daily"
    WEEKDAYS = "weekdays"
    EVERY_N_DAYS = "every_n_days"


class Trust(StrEnum):
    STRONG = "strong"
    """Badge read by a fixed scanner at the checkpoint."""
    NORMAL = "normal"
    """Online phone scan bound to a fresh server challenge and the guard's session."""
    LOW = "low"
    """Offline phone scan, synced later: its time is the phone's own clock."""


class ScanSource(StrEnum):
    EDGE = "edge"
    ONLINE = "online"
    OFFLINE = "offline"


class ScanFlag(StrEnum):
    OUTSIDE_WINDOW = "outside_window"
    """No open window of this guard's rounds covers the checkpoint at that time."""
    NOT_ASSIGNED = "not_assigned"
    """A round wanted this checkpoint then, but the guard is not assigned to it."""
    REPEAT = "repeat"
    """The checkpoint was already scanned in this round; counted once."""


class CheckpointResult(StrEnum):
    PENDING = "pending"
    ON_TIME = "on_time"
    EARLY = "early"
    LATE = "late"
    OUT_OF_ORDER = "out_of_order"
    MISSED = "missed"


class PatrolKey(SiteOwned, Base):
    """A per-site HMAC key. The newest unrevoked key signs; older unrevoked keys still verify, so printed
    codes keep working through a rotation until their key is revoked."""

    __tablename__ = "patrol_keys"
    __table_args__ = (UniqueConstraint("site_id", "kid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    kid: Mapped[int] = mapped_column(Integer)
    """Key number within the site (1, 2, ...), written into every token it signs."""
    secret: Mapped[str] = mapped_column(String(64))
    """32 random bytes, hex."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Checkpoint(SiteOwned, Base):
    __tablename__ = "patrol_checkpoints"
    __table_args__ = (UniqueConstraint("site_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    """As named in the edge's scanner config (``checkpoint:``) for fixed scanners."""
    name: Mapped[str] = mapped_column(String(200))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), index=True)
    floor: Mapped[int | None] = mapped_column(Integer)
    location: Mapped[str] = mapped_column(String(200), default="")
    x_m: Mapped[float | None] = mapped_column(Float)
    y_m: Mapped[float | None] = mapped_column(Float)
    """Position on the site plan in metres, for suggested routes and the floor view."""
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    geofence_m: Mapped[int | None] = mapped_column(Integer)
    """When set with lat/lon, an online phone scan must report a position within this radius."""
    method: Mapped[CheckpointMethod] = mapped_column(string_enum(CheckpointMethod, "checkpoint_method"))


class PatrolRoute(SiteOwned, Base):
    __tablename__ = "patrol_routes"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    ordered: Mapped[bool] = mapped_column(Boolean)


class RouteStop(Base):
    __tablename__ = "patrol_route_stops"
    __table_args__ = (
        UniqueConstraint("route_id", "position", name="uq_patrol_route_stops_position"),
        UniqueConstraint("route_id", "checkpoint_id", name="uq_patrol_route_stops_checkpoint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("patrol_routes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("patrol_checkpoints.id"), index=True)
    walk_s: Mapped[int] = mapped_column(Integer)
    """Expected walking time from the previous stop (from the round's start for the first)."""


class PatrolPlan(SiteOwned, Base):
    """A schedule: on matching days, a shift from ``shift_start`` to ``shift_end`` (next day when not later,
    so night shifts cross midnight), with a round every ``round_every_min`` that lasts ``round_minutes``."""

    __tablename__ = "patrol_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("patrol_routes.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    recurrence: Mapped[Recurrence] = mapped_column(string_enum(Recurrence, "patrol_recurrence"))
    every_n_days: Mapped[int] = mapped_column(Integer, default=1)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    shift_start: Mapped[time] = mapped_column(Time)
    shift_end: Mapped[time] = mapped_column(Time)
    """Local (Asia/Shanghai) wall-clock times."""
    round_every_min: Mapped[int] = mapped_column(Integer)
    round_minutes: Mapped[int] = mapped_column(Integer)
    tolerance_min: Mapped[int] = mapped_column(Integer)
    """Ordered routes: a scan within this many minutes of the expected arrival is on time."""
    grace_min: Mapped[int] = mapped_column(Integer)
    """After the on-time window, scans count as late for this long; then the checkpoint is missed."""
    assignees: Mapped[list[int]] = mapped_column(Json)
    """User ids: one guard, or a team (any of them may walk the round)."""
    ticket_on_miss: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PatrolRound(SiteOwned, Base):
    __tablename__ = "patrol_rounds"
    __table_args__ = (UniqueConstraint("plan_id", "starts_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("patrol_plans.id"), index=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("patrol_routes.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    assignees: Mapped[list[int]] = mapped_column(Json)
    guard_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    """The guard answerable for the round: the assignee, or for a team the first to scan in it."""
    ordered: Mapped[bool] = mapped_column(Boolean)
    ticket_on_miss: Mapped[bool] = mapped_column(Boolean)


class RoundCheckpoint(SiteOwned, Base):
    """One checkpoint of one round with its windows: early before ``due_from``, on time until ``due_until``,
    late until ``closes_at``, then missed."""

    __tablename__ = "patrol_round_checkpoints"
    __table_args__ = (UniqueConstraint("round_id", "checkpoint_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("patrol_rounds.id", ondelete="CASCADE"), index=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("patrol_checkpoints.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    opens_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_from: Mapped[datetime] = mapped_column(UtcDateTime)
    due_until: Mapped[datetime] = mapped_column(UtcDateTime)
    closes_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    result: Mapped[CheckpointResult] = mapped_column(
        string_enum(CheckpointResult, "patrol_result"), default=CheckpointResult.PENDING, index=True
    )
    scan_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_scans.id"), index=True)
    """The scan that counted (the first valid one)."""
    scanned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    missed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the monitor declared it missed and alerted."""


class PatrolScan(SiteOwned, Base):
    """Every accepted scan, counted or flagged. Rejected scans (bad signature, other site, revoked key,
    replay) are never stored: they prove nothing."""

    __tablename__ = "patrol_scans"
    __table_args__ = (UniqueConstraint("guard_id", "client_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("patrol_checkpoints.id"), index=True)
    guard_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    scanned_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    """When the scan happened: the edge's or the phone's time, not when the hub heard of it."""
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    trust: Mapped[Trust] = mapped_column(string_enum(Trust, "patrol_trust"))
    source: Mapped[ScanSource] = mapped_column(string_enum(ScanSource, "patrol_source"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_rounds.id", ondelete="SET NULL"), index=True)
    counted: Mapped[bool] = mapped_column(Boolean)
    flag: Mapped[ScanFlag | None] = mapped_column(string_enum(ScanFlag, "patrol_flag"))
    challenge_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_challenges.id"), unique=True)
    """Online scans: each challenge proves one scan only."""
    event_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    """Edge scans: the ``events`` row it came from (a re-run of the cursor cannot count it twice)."""
    client_ref: Mapped[str | None] = mapped_column(String(64))
    """Offline scans: the page's id for the queued scan, so a sync retried after a lost reply stores it once."""
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class PatrolChallenge(SiteOwned, Base):
    """A short-lived nonce the guard's page fetches just before an online scan, bound to that guard and
    that session: a scan replayed by someone else, or later, does not carry a valid one."""

    __tablename__ = "patrol_challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the session token the challenge was issued to."""
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class EdgeScanCursor(Base):
    """How far the edge-scan intake has read one edge's events. Per edge, because ingest stores each edge's
    events under that edge's row lock, so their ids commit in order; across edges they need not."""

    __tablename__ = "patrol_edge_cursors"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    edge: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    """Scan events turned away so far (bad badge, unknown checkpoint), for the console to show."""
    last_error: Mapped[str | None] = mapped_column(Text)
