"""Patrol: signing keys, checkpoints, routes, plans, rounds with their checkpoint windows, scans, challenges
and the edge-scan cursors.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _enum(name: str, values: tuple[str, ...], length: int = 16) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    op.create_table(
        "patrol_edge_cursors",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("edge", sa.String(length=64), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("site", "edge", name=op.f("pk_patrol_edge_cursors")),
    )
    op.create_table(
        "patrol_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_patrol_challenges_site_id_sites")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_patrol_challenges_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_challenges")),
        sa.UniqueConstraint("nonce", name=op.f("uq_patrol_challenges_nonce")),
    )
    op.create_index(op.f("ix_patrol_challenges_expires_at"), "patrol_challenges", ["expires_at"])
    op.create_index(op.f("ix_patrol_challenges_site_id"), "patrol_challenges", ["site_id"])
    op.create_index(op.f("ix_patrol_challenges_user_id"), "patrol_challenges", ["user_id"])
    op.create_table(
        "patrol_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_patrol_keys_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_keys")),
        sa.UniqueConstraint("site_id", "kid", name=op.f("uq_patrol_keys_site_id")),
    )
    op.create_index(op.f("ix_patrol_keys_site_id"), "patrol_keys", ["site_id"])
    op.create_table(
        "patrol_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("ordered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_patrol_routes_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_routes")),
        sa.UniqueConstraint("site_id", "name", name=op.f("uq_patrol_routes_site_id")),
    )
    op.create_index(op.f("ix_patrol_routes_site_id"), "patrol_routes", ["site_id"])
    op.create_table(
        "patrol_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("floor", sa.Integer(), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=False),
        sa.Column("x_m", sa.Float(), nullable=True),
        sa.Column("y_m", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("geofence_m", sa.Integer(), nullable=True),
        sa.Column(
            "method",
            _enum("checkpoint_method", ("scanner", "qr")),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["building_id"], ["buildings.id"], name=op.f("fk_patrol_checkpoints_building_id_buildings")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_patrol_checkpoints_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_checkpoints")),
        sa.UniqueConstraint("site_id", "code", name=op.f("uq_patrol_checkpoints_site_id")),
    )
    op.create_index(op.f("ix_patrol_checkpoints_building_id"), "patrol_checkpoints", ["building_id"])
    op.create_index(op.f("ix_patrol_checkpoints_site_id"), "patrol_checkpoints", ["site_id"])
    op.create_table(
        "patrol_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "recurrence",
            _enum("patrol_recurrence", ("daily", "weekdays", "every_n_days")),
            nullable=False,
        ),
        sa.Column("every_n_days", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("shift_start", sa.Time(), nullable=False),
        sa.Column("shift_end", sa.Time(), nullable=False),
        sa.Column("round_every_min", sa.Integer(), nullable=False),
        sa.Column("round_minutes", sa.Integer(), nullable=False),
        sa.Column("tolerance_min", sa.Integer(), nullable=False),
        sa.Column("grace_min", sa.Integer(), nullable=False),
        sa.Column("assignees", Json, nullable=False),
        sa.Column("ticket_on_miss", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["route_id"], ["patrol_routes.id"], name=op.f("fk_patrol_plans_route_id_patrol_routes")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_patrol_plans_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_plans")),
    )
    op.create_index(op.f("ix_patrol_plans_route_id"), "patrol_plans", ["route_id"])
    op.create_index(op.f("ix_patrol_plans_site_id"), "patrol_plans", ["site_id"])
    op.create_table(
        "patrol_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assignees", Json, nullable=False),
        sa.Column("guard_id", sa.Integer(), nullable=True),
        sa.Column("ordered", sa.Boolean(), nullable=False),
        sa.Column("ticket_on_miss", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["guard_id"], ["users.id"], name=op.f("fk_patrol_rounds_guard_id_users")),
        sa.ForeignKeyConstraint(["plan_id"], ["patrol_plans.id"], name=op.f("fk_patrol_rounds_plan_id_patrol_plans")),
        sa.ForeignKeyConstraint(
            ["route_id"], ["patrol_routes.id"], name=op.f("fk_patrol_rounds_route_id_patrol_routes")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_patrol_rounds_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_rounds")),
        sa.UniqueConstraint("plan_id", "starts_at", name=op.f("uq_patrol_rounds_plan_id")),
    )
    op.create_index(op.f("ix_patrol_rounds_guard_id"), "patrol_rounds", ["guard_id"])
    op.create_index(op.f("ix_patrol_rounds_plan_id"), "patrol_rounds", ["plan_id"])
    op.create_index(op.f("ix_patrol_rounds_route_id"), "patrol_rounds", ["route_id"])
    op.create_index(op.f("ix_patrol_rounds_site_id"), "patrol_rounds", ["site_id"])
    op.create_index(op.f("ix_patrol_rounds_starts_at"), "patrol_rounds", ["starts_at"])
    op.create_table(
        "patrol_route_stops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("walk_s", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["patrol_checkpoints.id"],
            name=op.f("fk_patrol_route_stops_checkpoint_id_patrol_checkpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["patrol_routes.id"],
            name=op.f("fk_patrol_route_stops_route_id_patrol_routes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_route_stops")),
        sa.UniqueConstraint("route_id", "checkpoint_id", name="uq_patrol_route_stops_checkpoint"),
        sa.UniqueConstraint("route_id", "position", name="uq_patrol_route_stops_position"),
    )
    op.create_index(op.f("ix_patrol_route_stops_checkpoint_id"), "patrol_route_stops", ["checkpoint_id"])
    op.create_index(op.f("ix_patrol_route_stops_route_id"), "patrol_route_stops", ["route_id"])
    op.create_table(
        "patrol_scans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("guard_id", sa.Integer(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "trust",
            _enum("patrol_trust", ("strong", "normal", "low")),
            nullable=False,
        ),
        sa.Column(
            "source",
            _enum("patrol_source", ("edge", "online", "offline")),
            nullable=False,
        ),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column(
            "flag",
            _enum("patrol_flag", ("outside_window", "not_assigned", "repeat")),
            nullable=True,
        ),
        sa.Column("challenge_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("client_ref", sa.String(length=64), nullable=True),
        sa.Column("details", Json, nullable=False),
        sa.ForeignKeyConstraint(
            ["challenge_id"], ["patrol_challenges.id"], name=op.f("fk_patrol_scans_challenge_id_patrol_challenges")
        ),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"], ["patrol_checkpoints.id"], name=op.f("fk_patrol_scans_checkpoint_id_patrol_checkpoints")
        ),
        sa.ForeignKeyConstraint(["guard_id"], ["users.id"], name=op.f("fk_patrol_scans_guard_id_users")),
        sa.ForeignKeyConstraint(
            ["round_id"], ["patrol_rounds.id"], name=op.f("fk_patrol_scans_round_id_patrol_rounds"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_patrol_scans_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_scans")),
        sa.UniqueConstraint("challenge_id", name=op.f("uq_patrol_scans_challenge_id")),
        sa.UniqueConstraint("event_id", name=op.f("uq_patrol_scans_event_id")),
        sa.UniqueConstraint("guard_id", "client_ref", name=op.f("uq_patrol_scans_guard_id")),
    )
    op.create_index(op.f("ix_patrol_scans_checkpoint_id"), "patrol_scans", ["checkpoint_id"])
    op.create_index(op.f("ix_patrol_scans_guard_id"), "patrol_scans", ["guard_id"])
    op.create_index(op.f("ix_patrol_scans_round_id"), "patrol_scans", ["round_id"])
    op.create_index(op.f("ix_patrol_scans_scanned_at"), "patrol_scans", ["scanned_at"])
    op.create_index(op.f("ix_patrol_scans_site_id"), "patrol_scans", ["site_id"])
    op.create_table(
        "patrol_round_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "result",
            _enum("patrol_result", ("pending", "on_time", "early", "late", "out_of_order", "missed")),
            nullable=False,
        ),
        sa.Column("scan_id", sa.Integer(), nullable=True),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["patrol_checkpoints.id"],
            name=op.f("fk_patrol_round_checkpoints_checkpoint_id_patrol_checkpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["patrol_rounds.id"],
            name=op.f("fk_patrol_round_checkpoints_round_id_patrol_rounds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["patrol_scans.id"], name=op.f("fk_patrol_round_checkpoints_scan_id_patrol_scans")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_patrol_round_checkpoints_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_round_checkpoints")),
        sa.UniqueConstraint("round_id", "checkpoint_id", name=op.f("uq_patrol_round_checkpoints_round_id")),
    )
    op.create_index(op.f("ix_patrol_round_checkpoints_checkpoint_id"), "patrol_round_checkpoints", ["checkpoint_id"])
    op.create_index(op.f("ix_patrol_round_checkpoints_closes_at"), "patrol_round_checkpoints", ["closes_at"])
    op.create_index(op.f("ix_patrol_round_checkpoints_result"), "patrol_round_checkpoints", ["result"])
    op.create_index(op.f("ix_patrol_round_checkpoints_round_id"), "patrol_round_checkpoints", ["round_id"])
    op.create_index(op.f("ix_patrol_round_checkpoints_scan_id"), "patrol_round_checkpoints", ["scan_id"])
    op.create_index(op.f("ix_patrol_round_checkpoints_site_id"), "patrol_round_checkpoints", ["site_id"])


def downgrade() -> None:
    op.drop_table("patrol_round_checkpoints")
    op.drop_table("patrol_scans")
    op.drop_table("patrol_route_stops")
    op.drop_table("patrol_rounds")
    op.drop_table("patrol_plans")
    op.drop_table("patrol_checkpoints")
    op.drop_table("patrol_routes")
    op.drop_table("patrol_keys")
    op.drop_table("patrol_challenges")
    op.drop_table("patrol_edge_cursors")
