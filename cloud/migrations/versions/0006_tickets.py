"""Work orders: tickets and their history, dispatch (assignments, grab offers), technicians and shifts, SLA
policies and marks, per-site settings, comments, photos, materials/labour and ratings.

Written by hand to match cloud/tickets/models.py: constraint and index names spelled out (op.f) as cloud.db's
naming convention makes them; enums as VARCHAR(16) with a CHECK of their values; JSON as JSONB on PostgreSQL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

TABLES = (
    "ticket_ratings",
    "ticket_items",
    "ticket_attachments",
    "ticket_comments",
    "ticket_pauses",
    "ticket_sla_marks",
    "ticket_offers",
    "ticket_assignments",
    "ticket_events",
    "tickets",
    "technician_shifts",
    "technicians",
    "ticket_sla_policies",
    "ticket_site_settings",
)
"""Children first: the order downgrade drops them in."""


def upgrade() -> None:
    op.create_table(
        "ticket_site_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("grab_mode", sa.Boolean(), nullable=False),
        sa.Column("accept_timeout_s", sa.Integer(), nullable=False),
        sa.Column("business_days", Json, nullable=False),
        sa.Column("business_start_min", sa.Integer(), nullable=False),
        sa.Column("business_end_min", sa.Integer(), nullable=False),
        sa.Column("team_lead_id", sa.Integer(), nullable=True),
        sa.Column("manager_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["manager_id"], ["users.id"], name=op.f("fk_ticket_site_settings_manager_id_users")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_ticket_site_settings_site_id_sites")),
        sa.ForeignKeyConstraint(
            ["team_lead_id"], ["users.id"], name=op.f("fk_ticket_site_settings_team_lead_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_site_settings")),
        sa.UniqueConstraint("site_id", name=op.f("uq_ticket_site_settings_site_id")),
    )
    op.create_table(
        "ticket_sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("response_min", sa.Integer(), nullable=False),
        sa.Column("resolution_min", sa.Integer(), nullable=False),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.Column("warn_percent", sa.Integer(), nullable=False),
        sa.Column("level2_percent", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "priority IN ('urgent', 'high', 'normal', 'low')", name=op.f("ck_ticket_sla_policies_ticket_priority")
        ),
        sa.CheckConstraint(
            "response_min > 0 AND resolution_min > 0", name=op.f("ck_ticket_sla_policies_positive_targets")
        ),
        sa.CheckConstraint(
            "warn_percent > 0 AND warn_percent < 100 AND level2_percent > 100",
            name=op.f("ck_ticket_sla_policies_levels"),
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_ticket_sla_policies_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_sla_policies")),
        sa.UniqueConstraint("site_id", "category", "priority", name=op.f("uq_ticket_sla_policies_site_id")),
    )
    op.create_table(
        "technicians",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("skills", Json, nullable=False),
        sa.Column("zone_building_ids", Json, nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("location_building_id", sa.Integer(), nullable=True),
        sa.Column("location_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["location_building_id"], ["buildings.id"], name=op.f("fk_technicians_location_building_id_buildings")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_technicians_site_id_sites")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_technicians_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technicians")),
        sa.UniqueConstraint("user_id", "site_id", name=op.f("uq_technicians_user_id")),
    )
    op.create_index(op.f("ix_technicians_site_id"), "technicians", ["site_id"], unique=False)
    op.create_index(op.f("ix_technicians_user_id"), "technicians", ["user_id"], unique=False)
    op.create_table(
        "technician_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_technician_shifts_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["technician_id"],
            ["technicians.id"],
            name=op.f("fk_technician_shifts_technician_id_technicians"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technician_shifts")),
    )
    op.create_index(
        "ix_technician_shifts_technician_starts", "technician_shifts", ["technician_id", "starts_at"], unique=False
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("equipment_id", sa.Integer(), nullable=True),
        sa.Column("meter_id", sa.Integer(), nullable=True),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("preferred_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("preferred_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reporter_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("dispatch_round", sa.Integer(), nullable=False),
        sa.Column("next_dispatch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sla_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("fault_cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waiting_owner_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_target_s", sa.Integer(), nullable=False),
        sa.Column("resolution_target_s", sa.Integer(), nullable=False),
        sa.Column("warn_percent", sa.Integer(), nullable=False),
        sa.Column("level2_percent", sa.Integer(), nullable=False),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("next_sla_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("charge_fen", sa.BigInteger(), nullable=False),
        sa.Column("ledger_entry_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "source IN ('alarm', 'owner', 'staff', 'patrol', 'maintenance')", name=op.f("ck_tickets_ticket_source")
        ),
        sa.CheckConstraint(
            "category IN ('electrical', 'plumbing', 'lift', 'hvac', 'fire', 'general')",
            name=op.f("ck_tickets_ticket_category"),
        ),
        sa.CheckConstraint("priority IN ('urgent', 'high', 'normal', 'low')", name=op.f("ck_tickets_ticket_priority")),
        sa.CheckConstraint(
            "state IN ('new', 'assigned', 'accepted', 'in_progress', 'verify', 'done', 'follow_up', 'closed', "
            "'cancelled')",
            name=op.f("ck_tickets_ticket_state"),
        ),
        sa.CheckConstraint("source != 'owner' OR unit_id IS NOT NULL", name=op.f("ck_tickets_owner_request_has_unit")),
        sa.CheckConstraint(
            "state != 'cancelled' OR cancel_reason IS NOT NULL", name=op.f("ck_tickets_cancel_has_reason")
        ),
        sa.CheckConstraint("charge_fen >= 0", name=op.f("ck_tickets_charge_not_negative")),
        sa.ForeignKeyConstraint(["alarm_id"], ["alarms.id"], name=op.f("fk_tickets_alarm_id_alarms")),
        sa.ForeignKeyConstraint(["assignee_id"], ["technicians.id"], name=op.f("fk_tickets_assignee_id_technicians")),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"], name=op.f("fk_tickets_building_id_buildings")),
        sa.ForeignKeyConstraint(["equipment_id"], ["equipment.id"], name=op.f("fk_tickets_equipment_id_equipment")),
        sa.ForeignKeyConstraint(
            ["ledger_entry_id"], ["ledger_entries.id"], name=op.f("fk_tickets_ledger_entry_id_ledger_entries")
        ),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_tickets_meter_id_meters")),
        sa.ForeignKeyConstraint(["reporter_id"], ["users.id"], name=op.f("fk_tickets_reporter_id_users")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_tickets_site_id_sites")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_tickets_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("alarm_id", name=op.f("uq_tickets_alarm_id")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_tickets_dedupe_key")),
    )
    op.create_index(op.f("ix_tickets_assignee_id"), "tickets", ["assignee_id"], unique=False)
    op.create_index(op.f("ix_tickets_created_at"), "tickets", ["created_at"], unique=False)
    op.create_index(op.f("ix_tickets_equipment_id"), "tickets", ["equipment_id"], unique=False)
    op.create_index(op.f("ix_tickets_meter_id"), "tickets", ["meter_id"], unique=False)
    op.create_index(op.f("ix_tickets_next_dispatch_at"), "tickets", ["next_dispatch_at"], unique=False)
    op.create_index(op.f("ix_tickets_next_sla_check_at"), "tickets", ["next_sla_check_at"], unique=False)
    op.create_index(op.f("ix_tickets_reporter_id"), "tickets", ["reporter_id"], unique=False)
    op.create_index(op.f("ix_tickets_site_id"), "tickets", ["site_id"], unique=False)
    op.create_index("ix_tickets_site_state", "tickets", ["site_id", "state"], unique=False)
    op.create_index(op.f("ix_tickets_unit_id"), "tickets", ["unit_id"], unique=False)
    op.create_table(
        "ticket_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("score", Json, nullable=False),
        sa.Column("assigned_by", sa.Integer(), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("mode IN ('auto', 'manual', 'grab')", name=op.f("ck_ticket_assignments_assignment_mode")),
        sa.CheckConstraint(
            "state IN ('offered', 'accepted', 'timed_out', 'declined', 'withdrawn')",
            name=op.f("ck_ticket_assignments_assignment_state"),
        ),
        sa.ForeignKeyConstraint(["assigned_by"], ["users.id"], name=op.f("fk_ticket_assignments_assigned_by_users")),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["technicians.id"], name=op.f("fk_ticket_assignments_technician_id_technicians")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_assignments_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_assignments")),
        sa.UniqueConstraint("ticket_id", "round", name=op.f("uq_ticket_assignments_ticket_id")),
    )
    op.create_index(
        "ix_ticket_assignments_state_deadline", "ticket_assignments", ["state", "deadline_at"], unique=False
    )
    op.create_index(op.f("ix_ticket_assignments_technician_id"), "ticket_assignments", ["technician_id"], unique=False)
    op.create_table(
        "ticket_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_attachments_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["uploaded_by"], ["users.id"], name=op.f("fk_ticket_attachments_uploaded_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_attachments")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_ticket_attachments_storage_key")),
    )
    op.create_index(op.f("ix_ticket_attachments_ticket_id"), "ticket_attachments", ["ticket_id"], unique=False)
    op.create_table(
        "ticket_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_ticket_comments_author_id_users")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_comments_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_comments")),
    )
    op.create_index(op.f("ix_ticket_comments_ticket_id"), "ticket_comments", ["ticket_id"], unique=False)
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_ticket_events_actor_id_users")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index(op.f("ix_ticket_events_ticket_id"), "ticket_events", ["ticket_id"], unique=False)
    op.create_table(
        "ticket_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("unit_price_fen", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('material', 'labour')", name=op.f("ck_ticket_items_item_kind")),
        sa.CheckConstraint("amount_fen >= 0 AND unit_price_fen >= 0", name=op.f("ck_ticket_items_not_negative")),
        sa.ForeignKeyConstraint(["added_by"], ["users.id"], name=op.f("fk_ticket_items_added_by_users")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_items_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_items")),
    )
    op.create_index(op.f("ix_ticket_items_ticket_id"), "ticket_items", ["ticket_id"], unique=False)
    op.create_table(
        "ticket_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["technicians.id"], name=op.f("fk_ticket_offers_technician_id_technicians")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_offers_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_offers")),
        sa.UniqueConstraint("ticket_id", "round", "technician_id", name=op.f("uq_ticket_offers_ticket_id")),
    )
    op.create_index(op.f("ix_ticket_offers_technician_id"), "ticket_offers", ["technician_id"], unique=False)
    op.create_table(
        "ticket_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_pauses_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_pauses")),
    )
    op.create_index(op.f("ix_ticket_pauses_ticket_id"), "ticket_pauses", ["ticket_id"], unique=False)
    op.create_table(
        "ticket_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("speed", sa.Integer(), nullable=False),
        sa.Column("attitude", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "speed BETWEEN 1 AND 5 AND attitude BETWEEN 1 AND 5 AND quality BETWEEN 1 AND 5",
            name=op.f("ck_ticket_ratings_one_to_five"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_ratings_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_ticket_ratings_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_ratings")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_ticket_ratings_ticket_id")),
    )
    op.create_table(
        "ticket_sla_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("clock", sa.String(length=16), nullable=False),
        sa.Column("mark", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_sla_marks_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_sla_marks")),
        sa.UniqueConstraint("ticket_id", "cycle", "clock", "mark", name=op.f("uq_ticket_sla_marks_ticket_id")),
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
