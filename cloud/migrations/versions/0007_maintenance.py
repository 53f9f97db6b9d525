"""Equipment maintenance: inspection standards, plans and tasks.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
PERIOD_UNITS = "period_unit IN ('day', 'week', 'month')"


def upgrade() -> None:
    op.create_table(
        "maint_equipment_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("period_unit", sa.String(length=16), nullable=False),
        sa.Column("period_count", sa.Integer(), nullable=False),
        sa.CheckConstraint(PERIOD_UNITS, name=op.f("ck_maint_equipment_types_period_unit")),
        sa.CheckConstraint("period_count > 0", name=op.f("ck_maint_equipment_types_period_positive")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_maint_equipment_types_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maint_equipment_types")),
        sa.UniqueConstraint("site_id", "code", name=op.f("uq_maint_equipment_types_site_id")),
    )
    op.create_index(op.f("ix_maint_equipment_types_site_id"), "maint_equipment_types", ["site_id"])

    op.create_table(
        "maint_inspection_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("min_value", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("max_value", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.CheckConstraint("kind IN ('check', 'reading')", name=op.f("ck_maint_inspection_items_inspection_kind")),
        sa.CheckConstraint(
            "kind = 'reading' OR (min_value IS NULL AND max_value IS NULL)",
            name=op.f("ck_maint_inspection_items_range_on_readings"),
        ),
        sa.CheckConstraint(
            "min_value IS NULL OR max_value IS NULL OR min_value <= max_value",
            name=op.f("ck_maint_inspection_items_range_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["type_id"],
            ["maint_equipment_types.id"],
            name=op.f("fk_maint_inspection_items_type_id_maint_equipment_types"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maint_inspection_items")),
        sa.UniqueConstraint("type_id", "position", name=op.f("uq_maint_inspection_items_type_id")),
    )
    op.create_index(op.f("ix_maint_inspection_items_type_id"), "maint_inspection_items", ["type_id"])

    op.create_table(
        "maint_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("equipment_id", sa.Integer(), nullable=False),
        sa.Column("type_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("period_unit", sa.String(length=16), nullable=False),
        sa.Column("period_count", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("lead_days", sa.Integer(), nullable=False),
        sa.Column("remind_days", sa.Integer(), nullable=False),
        sa.Column("responsible_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("generated_through", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(PERIOD_UNITS, name=op.f("ck_maint_plans_period_unit")),
        sa.CheckConstraint("period_count > 0", name=op.f("ck_maint_plans_period_positive")),
        sa.CheckConstraint("lead_days >= 0 AND remind_days >= 0", name=op.f("ck_maint_plans_days_not_negative")),
        sa.ForeignKeyConstraint(["equipment_id"], ["equipment.id"], name=op.f("fk_maint_plans_equipment_id_equipment")),
        sa.ForeignKeyConstraint(["responsible_id"], ["users.id"], name=op.f("fk_maint_plans_responsible_id_users")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_maint_plans_site_id_sites")),
        sa.ForeignKeyConstraint(
            ["type_id"], ["maint_equipment_types.id"], name=op.f("fk_maint_plans_type_id_maint_equipment_types")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maint_plans")),
    )
    op.create_index(op.f("ix_maint_plans_equipment_id"), "maint_plans", ["equipment_id"])
    op.create_index(op.f("ix_maint_plans_responsible_id"), "maint_plans", ["responsible_id"])
    op.create_index(op.f("ix_maint_plans_site_id"), "maint_plans", ["site_id"])
    op.create_index(op.f("ix_maint_plans_type_id"), "maint_plans", ["type_id"])

    op.create_table(
        "maint_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("equipment_id", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("photos", Json, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("state IN ('open', 'passed', 'failed')", name=op.f("ck_maint_tasks_maint_task_state")),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name=op.f("fk_maint_tasks_assignee_id_users")),
        sa.ForeignKeyConstraint(["done_by_id"], ["users.id"], name=op.f("fk_maint_tasks_done_by_id_users")),
        sa.ForeignKeyConstraint(["equipment_id"], ["equipment.id"], name=op.f("fk_maint_tasks_equipment_id_equipment")),
        sa.ForeignKeyConstraint(["plan_id"], ["maint_plans.id"], name=op.f("fk_maint_tasks_plan_id_maint_plans")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_maint_tasks_site_id_sites")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_maint_tasks_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maint_tasks")),
        sa.UniqueConstraint("plan_id", "due_on", name=op.f("uq_maint_tasks_plan_id")),
    )
    op.create_index(op.f("ix_maint_tasks_assignee_id"), "maint_tasks", ["assignee_id"])
    op.create_index(op.f("ix_maint_tasks_equipment_id"), "maint_tasks", ["equipment_id"])
    op.create_index(op.f("ix_maint_tasks_plan_id"), "maint_tasks", ["plan_id"])
    op.create_index(op.f("ix_maint_tasks_site_id"), "maint_tasks", ["site_id"])
    op.create_index(op.f("ix_maint_tasks_state_due_on"), "maint_tasks", ["state", "due_on"])
    op.create_index(op.f("ix_maint_tasks_ticket_id"), "maint_tasks", ["ticket_id"])

    op.create_table(
        "maint_task_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("reading", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["maint_inspection_items.id"],
            name=op.f("fk_maint_task_results_item_id_maint_inspection_items"),
        ),  # fmt: skip
        sa.ForeignKeyConstraint(
            ["task_id"], ["maint_tasks.id"], name=op.f("fk_maint_task_results_task_id_maint_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maint_task_results")),
        sa.UniqueConstraint("task_id", "item_id", name=op.f("uq_maint_task_results_task_id")),
    )
    op.create_index(op.f("ix_maint_task_results_item_id"), "maint_task_results", ["item_id"])
    op.create_index(op.f("ix_maint_task_results_task_id"), "maint_task_results", ["task_id"])


def downgrade() -> None:
    op.drop_table("maint_task_results")
    op.drop_table("maint_tasks")
    op.drop_table("maint_plans")
    op.drop_table("maint_inspection_items")
    op.drop_table("maint_equipment_types")
