"""Payments: counter and online payments, their allocation to bills, prepaid credit; per-site billing rules
(late fees, reminders, approval levels of ledger entries).

Written by hand to match cloud/payments/models.py and cloud/billing/rules.py; names spelled out (op.f) as
cloud.db's naming convention makes them. Enums are VARCHAR(16) with a CHECK, JSON is JSONB on PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Money = sa.BigInteger()
Utc = sa.DateTime(timezone=True)
ENTRY_KINDS = "kind IN ('correction', 'adjustment', 'waiver', 'void', 'late_fee', 'repair')"


def _site_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f(f"fk_{table}_site_id_sites"))


def _unit_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f(f"fk_{table}_unit_id_units"))


def upgrade() -> None:
    op.create_table(
        "billing_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("late_fee_daily_rate", sa.Numeric(precision=8, scale=6), nullable=False),
        sa.Column("late_fee_cap_rate", sa.Numeric(precision=8, scale=4), nullable=True),
        sa.Column("late_fee_cap_fen", Money, nullable=True),
        sa.Column("reminder_days_before", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "late_fee_daily_rate >= 0 AND late_fee_daily_rate < 0.1", name=op.f("ck_billing_policies_daily_rate_range")
        ),
        sa.CheckConstraint("reminder_days_before >= 0", name=op.f("ck_billing_policies_reminder_days_nonnegative")),
        _site_fk("billing_policies"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_policies")),
        sa.UniqueConstraint("site_id", name=op.f("uq_billing_policies_site_id")),
    )
    op.create_table(
        "ledger_approval_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("min_amount_fen", Money, nullable=False),
        sa.Column("levels", sa.Integer(), nullable=False),
        sa.CheckConstraint(ENTRY_KINDS, name=op.f("ck_ledger_approval_rules_entry_kind")),
        sa.CheckConstraint("levels >= 1 AND levels <= 5", name=op.f("ck_ledger_approval_rules_levels_range")),
        sa.CheckConstraint("min_amount_fen >= 0", name=op.f("ck_ledger_approval_rules_min_amount_nonnegative")),
        _site_fk("ledger_approval_rules"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_approval_rules")),
        sa.UniqueConstraint("site_id", "kind", "min_amount_fen", name=op.f("uq_ledger_approval_rules_site_id")),
    )
    op.create_index(op.f("ix_ledger_approval_rules_site_id"), "ledger_approval_rules", ["site_id"])
    op.create_table(
        "payment_intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("amount_fen", Money, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("bill_ids", Json, nullable=False),
        sa.Column("return_url", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("paid_at", Utc, nullable=True),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payment_intents_amount_positive")),
        sa.CheckConstraint("state IN ('pending', 'paid')", name=op.f("ck_payment_intents_intent_state")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_payment_intents_created_by_users")),
        _site_fk("payment_intents"),
        _unit_fk("payment_intents"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_intents")),
        sa.UniqueConstraint("reference", name=op.f("uq_payment_intents_reference")),
    )
    op.create_index(op.f("ix_payment_intents_site_id"), "payment_intents", ["site_id"])
    op.create_index(op.f("ix_payment_intents_unit_id"), "payment_intents", ["unit_id"])
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("amount_fen", Money, nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("receipt_no", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("provider_txn_id", sa.String(length=100), nullable=True),
        sa.Column("intent_id", sa.Integer(), nullable=True),
        sa.Column("received_by", sa.Integer(), nullable=True),
        sa.Column("received_at", Utc, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payments_amount_positive")),
        sa.CheckConstraint("method IN ('cash', 'card', 'transfer', 'online')", name=op.f("ck_payments_payment_method")),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["payment_intents.id"], name=op.f("fk_payments_intent_id_payment_intents")
        ),
        sa.ForeignKeyConstraint(["received_by"], ["users.id"], name=op.f("fk_payments_received_by_users")),
        _site_fk("payments"),
        _unit_fk("payments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("intent_id", name=op.f("uq_payments_intent_id")),
        sa.UniqueConstraint("provider", "provider_txn_id", name=op.f("uq_payments_provider")),
        sa.UniqueConstraint("receipt_no", name=op.f("uq_payments_receipt_no")),
    )
    op.create_index(op.f("ix_payments_site_id"), "payments", ["site_id"])
    op.create_index(op.f("ix_payments_unit_id"), "payments", ["unit_id"])
    op.create_table(
        "payment_allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("bill_id", sa.Integer(), nullable=False),
        sa.Column("amount_fen", Money, nullable=False),
        sa.Column("at", Utc, nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payment_allocations_amount_positive")),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_payment_allocations_bill_id_bills")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_allocations_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_allocations")),
    )
    op.create_index(op.f("ix_payment_allocations_bill_id"), "payment_allocations", ["bill_id"])
    op.create_index(op.f("ix_payment_allocations_payment_id"), "payment_allocations", ["payment_id"])


def downgrade() -> None:
    op.drop_table("payment_allocations")
    op.drop_table("payments")
    op.drop_table("payment_intents")
    op.drop_table("ledger_approval_rules")
    op.drop_table("billing_policies")
