"""Billing: tariffs, meter readings, shared-cost pools, bill runs, bills and the ledger.

Written by hand to match cloud/billing/models.py; names spelled out (op.f) as cloud.db's naming convention
makes them. Enums are VARCHAR(16) with a CHECK, JSON is JSONB on PostgreSQL, as in 0001.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Money = sa.BigInteger()
Reading = sa.Numeric(precision=16, scale=4)
Utc = sa.DateTime(timezone=True)


def _site(table: str) -> list[sa.schema.SchemaItem]:
    """The site_id column every site-owned table has, with its foreign key."""
    return [
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f(f"fk_{table}_site_id_sites")),
    ]


def _site_index(table: str) -> None:
    op.create_index(op.f(f"ix_{table}_site_id"), table, ["site_id"])


def upgrade() -> None:
    # --- tariffs ---
    op.create_table(
        "tariffs",
        sa.Column("id", sa.Integer(), nullable=False),
        *_site("tariffs"),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.CheckConstraint("kind IN ('electricity', 'water', 'property_fee')", name=op.f("ck_tariffs_tariff_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariffs")),
        sa.UniqueConstraint("site_id", "code", name=op.f("uq_tariffs_site_id")),
    )
    _site_index("tariffs")
    op.create_table(
        "tariff_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tariff_id", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("document", Json, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", Utc, nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_tariff_versions_created_by_users")),
        sa.ForeignKeyConstraint(
            ["tariff_id"], ["tariffs.id"], name=op.f("fk_tariff_versions_tariff_id_tariffs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariff_versions")),
        sa.UniqueConstraint("tariff_id", "effective_from", name=op.f("uq_tariff_versions_tariff_id")),
    )
    op.create_table(
        "tariff_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        *_site("tariff_assignments"),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("tariff_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meter_id"], ["meters.id"], name=op.f("fk_tariff_assignments_meter_id_meters"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["tariff_id"], ["tariffs.id"], name=op.f("fk_tariff_assignments_tariff_id_tariffs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariff_assignments")),
        sa.UniqueConstraint("meter_id", name=op.f("uq_tariff_assignments_meter_id")),
    )
    _site_index("tariff_assignments")
    op.create_index(op.f("ix_tariff_assignments_tariff_id"), "tariff_assignments", ["tariff_id"])

    # --- readings ---
    op.create_table(
        "meter_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        *_site("meter_readings"),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("read_at", Utc, nullable=False),
        sa.Column("value", Reading, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("entered_by", sa.Integer(), nullable=True),
        sa.Column("entered_at", Utc, nullable=False),
        sa.CheckConstraint("source IN ('manual', 'import')", name=op.f("ck_meter_readings_reading_source")),
        sa.ForeignKeyConstraint(["entered_by"], ["users.id"], name=op.f("fk_meter_readings_entered_by_users")),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_meter_readings_meter_id_meters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_readings")),
        sa.UniqueConstraint("meter_id", "read_at", name=op.f("uq_meter_readings_meter_id")),
    )
    _site_index("meter_readings")
    op.create_table(
        "reading_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        *_site("reading_corrections"),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("read_at", Utc, nullable=False),
        sa.Column("old_value", Reading, nullable=True),
        sa.Column("new_value", Reading, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("corrected_by", sa.Integer(), nullable=True),
        sa.Column("corrected_at", Utc, nullable=False),
        sa.ForeignKeyConstraint(["corrected_by"], ["users.id"], name=op.f("fk_reading_corrections_corrected_by_users")),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_reading_corrections_meter_id_meters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reading_corrections")),
    )
    op.create_index("ix_reading_corrections_meter_read_at", "reading_corrections", ["meter_id", "read_at"])
    _site_index("reading_corrections")
    op.create_table(
        "meter_replacements",
        sa.Column("id", sa.Integer(), nullable=False),
        *_site("meter_replacements"),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("replaced_at", Utc, nullable=False),
        sa.Column("old_final", Reading, nullable=False),
        sa.Column("new_initial", Reading, nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("recorded_at", Utc, nullable=False),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_meter_replacements_meter_id_meters")),
        sa.ForeignKeyConstraint(["recorded_by"], ["users.id"], name=op.f("fk_meter_replacements_recorded_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_replacements")),
        sa.UniqueConstraint("meter_id", "replaced_at", name=op.f("uq_meter_replacements_meter_id")),
    )
    _site_index("meter_replacements")

    # --- shared-cost pools ---
    op.create_table(
        "shared_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        *_site("shared_pools"),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=False),
        sa.Column("tariff_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("weights", Json, nullable=False),
        sa.Column("requires_approval", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('common', 'loss')", name=op.f("ck_shared_pools_pool_kind")),
        sa.CheckConstraint(
            "method IN ('area', 'usage', 'equal', 'weights')", name=op.f("ck_shared_pools_allocation_method")
        ),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_shared_pools_meter_id_meters")),
        sa.ForeignKeyConstraint(["tariff_id"], ["tariffs.id"], name=op.f("fk_shared_pools_tariff_id_tariffs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_pools")),
        sa.UniqueConstraint("meter_id", "kind", name=op.f("uq_shared_pools_meter_id")),
        sa.UniqueConstraint("site_id", "code", name=op.f("uq_shared_pools_site_id")),
    )
    _site_index("shared_pools")
    op.create_table(
        "pool_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        *_site("pool_approvals"),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("quantity", Reading, nullable=False),
        sa.Column("approved_by", sa.Integer(), nullable=False),
        sa.Column("approved_at", Utc, nullable=False),
        sa.ForeignKeyConstraint(["approved_by"], ["users.id"], name=op.f("fk_pool_approvals_approved_by_users")),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["shared_pools.id"], name=op.f("fk_pool_approvals_pool_id_shared_pools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_approvals")),
        sa.UniqueConstraint("pool_id", "period", name=op.f("uq_pool_approvals_pool_id")),
    )
    _site_index("pool_approvals")

    # --- runs, bills and the ledger ---
    op.create_table(
        "bill_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        *_site("bill_runs"),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("issue", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("units_total", sa.Integer(), nullable=False),
        sa.Column("units_done", sa.Integer(), nullable=False),
        sa.Column("summary", Json, nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=True),
        sa.Column("started_at", Utc, nullable=False),
        sa.Column("finished_at", Utc, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('running', 'previewed', 'issued', 'failed')", name=op.f("ck_bill_runs_run_state")
        ),
        sa.ForeignKeyConstraint(["started_by"], ["users.id"], name=op.f("fk_bill_runs_started_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_runs")),
    )
    _site_index("bill_runs")
    op.create_table(
        "bills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        *_site("bills"),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("total_fen", Money, nullable=False),
        sa.Column("issued_at", Utc, nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["bill_runs.id"], name=op.f("fk_bills_run_id_bill_runs")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_bills_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
        sa.UniqueConstraint("number", name=op.f("uq_bills_number")),
        sa.UniqueConstraint("unit_id", "period", name=op.f("uq_bills_unit_id")),
    )
    op.create_index(op.f("ix_bills_period"), "bills", ["period"])
    _site_index("bills")
    op.create_index(op.f("ix_bills_unit_id"), "bills", ["unit_id"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        *_site("ledger_entries"),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("bill_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_fen", Money, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("effective_at", Utc, nullable=True),
        sa.CheckConstraint(
            "kind IN ('correction', 'adjustment', 'waiver', 'void', 'late_fee', 'repair')",
            name=op.f("ck_ledger_entries_entry_kind"),
        ),
        sa.CheckConstraint("state IN ('pending', 'effective', 'rejected')", name=op.f("ck_ledger_entries_entry_state")),
        sa.CheckConstraint(
            "state != 'effective' OR effective_at IS NOT NULL", name=op.f("ck_ledger_entries_effective_has_time")
        ),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_ledger_entries_bill_id_bills")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_ledger_entries_created_by_users")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_ledger_entries_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_ledger_entries_dedupe_key")),
    )
    op.create_index(op.f("ix_ledger_entries_bill_id"), "ledger_entries", ["bill_id"])
    _site_index("ledger_entries")
    op.create_index("ix_ledger_entries_unit_state", "ledger_entries", ["unit_id", "state"])
    op.create_table(
        "ledger_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", Utc, nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_ledger_approvals_entry_id_ledger_entries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_ledger_approvals_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_approvals")),
        sa.UniqueConstraint("entry_id", "level", name=op.f("uq_ledger_approvals_entry_level")),
        sa.UniqueConstraint("entry_id", "user_id", name=op.f("uq_ledger_approvals_entry_user")),
    )
    op.create_table(
        "bill_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bill_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("meter_id", sa.Integer(), nullable=True),
        sa.Column("quantity", Reading, nullable=True),
        sa.Column("unit_price", sa.Numeric(precision=12, scale=6), nullable=True),
        sa.Column("amount_fen", Money, nullable=False),
        sa.Column("detail", Json, nullable=False),
        sa.ForeignKeyConstraint(
            ["bill_id"], ["bills.id"], name=op.f("fk_bill_lines_bill_id_bills"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_bill_lines_entry_id_ledger_entries")
        ),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_bill_lines_meter_id_meters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_lines")),
    )
    op.create_index(op.f("ix_bill_lines_bill_id"), "bill_lines", ["bill_id"])
    op.create_index(op.f("ix_bill_lines_entry_id"), "bill_lines", ["entry_id"])
    op.create_table(
        "bill_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bill_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("total_fen", Money, nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bill_id"], ["bills.id"], name=op.f("fk_bill_revisions_bill_id_bills"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_bill_revisions_entry_id_ledger_entries")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["bill_runs.id"], name=op.f("fk_bill_revisions_run_id_bill_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_revisions")),
        sa.UniqueConstraint("bill_id", "revision", name=op.f("uq_bill_revisions_bill_id")),
    )


def downgrade() -> None:
    # Dependents before what they reference; a table's indexes go with it.
    for table in (
        "bill_revisions",
        "bill_lines",
        "ledger_approvals",
        "ledger_entries",
        "bills",
        "bill_runs",
        "pool_approvals",
        "shared_pools",
        "meter_replacements",
        "reading_corrections",
        "meter_readings",
        "tariff_assignments",
        "tariff_versions",
        "tariffs",
    ):
        op.drop_table(table)
