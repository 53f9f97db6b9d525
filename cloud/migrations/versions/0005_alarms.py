"""Alarms: rules, alarms and their transitions, the evaluator's state; notification deliveries and read marks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
RULE_KINDS = (
    "threshold", "meter_offline", "edge_offline", "leak", "abnormal_consumption", "tamper", "counter_rollover",
    "meter_replaced", "edge_alarm",
)  # fmt: skip
SEVERITIES = ("info", "warning", "critical")
STATES = ("active", "acknowledged", "cleared")


def _enum(name: str, values: tuple[str, ...], length: int = 16) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    op.create_table(
        "alarm_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", _enum("alarm_rule_kind", RULE_KINDS, 24), nullable=False),
        sa.Column("severity", _enum("alarm_rule_severity", SEVERITIES), nullable=False),
        sa.Column("equipment_id", sa.Integer(), nullable=True),
        sa.Column("equipment_type", sa.String(length=32), nullable=True),
        sa.Column("meter_id", sa.Integer(), nullable=True),
        sa.Column("point", sa.String(length=128), nullable=True),
        sa.Column("params", Json, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["equipment_id"], ["equipment.id"], name=op.f("fk_alarm_rules_equipment_id_equipment")),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_alarm_rules_meter_id_meters")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_alarm_rules_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_rules")),
        sa.UniqueConstraint("site_id", "name", name=op.f("uq_alarm_rules_site_id")),
    )
    op.create_index(op.f("ix_alarm_rules_equipment_id"), "alarm_rules", ["equipment_id"])
    op.create_index(op.f("ix_alarm_rules_meter_id"), "alarm_rules", ["meter_id"])
    op.create_index(op.f("ix_alarm_rules_site_id"), "alarm_rules", ["site_id"])

    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("asset_key", sa.String(length=200), nullable=False),
        sa.Column("active_key", sa.String(length=401), nullable=True),
        sa.Column("kind", _enum("alarm_kind", RULE_KINDS, 24), nullable=False),
        sa.Column("severity", _enum("alarm_severity", SEVERITIES), nullable=False),
        sa.Column("state", _enum("alarm_state", STATES), nullable=False),
        sa.Column("equipment_id", sa.Integer(), nullable=True),
        sa.Column("meter_id", sa.Integer(), nullable=True),
        sa.Column("edge", sa.String(length=64), nullable=True),
        sa.Column("device", sa.String(length=128), nullable=True),
        sa.Column("point", sa.String(length=128), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flaps", sa.Integer(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.ForeignKeyConstraint(["acknowledged_by"], ["users.id"], name=op.f("fk_alarms_acknowledged_by_users")),
        sa.ForeignKeyConstraint(["equipment_id"], ["equipment.id"], name=op.f("fk_alarms_equipment_id_equipment")),
        sa.ForeignKeyConstraint(["meter_id"], ["meters.id"], name=op.f("fk_alarms_meter_id_meters")),
        sa.ForeignKeyConstraint(["rule_id"], ["alarm_rules.id"], name=op.f("fk_alarms_rule_id_alarm_rules")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_alarms_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
        sa.UniqueConstraint("active_key", name=op.f("uq_alarms_active_key")),
    )
    op.create_index(op.f("ix_alarms_source_key"), "alarms", ["source_key", "asset_key", "cleared_at"])
    op.create_index(op.f("ix_alarms_equipment_id"), "alarms", ["equipment_id"])
    op.create_index(op.f("ix_alarms_meter_id"), "alarms", ["meter_id"])
    op.create_index(op.f("ix_alarms_raised_at"), "alarms", ["raised_at"])
    op.create_index(op.f("ix_alarms_rule_id"), "alarms", ["rule_id"])
    op.create_index(op.f("ix_alarms_site_id"), "alarms", ["site_id"])
    op.create_index(op.f("ix_alarms_state"), "alarms", ["state"])

    op.create_table(
        "alarm_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", _enum("from_state", STATES), nullable=True),
        sa.Column("to_state", _enum("to_state", STATES), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"], ["alarms.id"], name=op.f("fk_alarm_transitions_alarm_id_alarms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_alarm_transitions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_transitions")),
    )
    op.create_index(op.f("ix_alarm_transitions_alarm_id"), "alarm_transitions", ["alarm_id"])

    op.create_table(
        "alarm_conditions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("beyond_since", sa.BigInteger(), nullable=True),
        sa.Column("back_since", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alarm_rules.id"], name=op.f("fk_alarm_conditions_rule_id_alarm_rules"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"], name=op.f("fk_alarm_conditions_series_id_series")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_conditions")),
        sa.UniqueConstraint("rule_id", "series_id", name=op.f("uq_alarm_conditions_rule_id")),
    )

    op.create_table(
        "alarm_cursors",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("holes", Json, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alarm_cursors")),
    )

    op.add_column("notifications", sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("channel", _enum("notify_channel", ("mqtt", "webhook", "sms")), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_deliveries_notification_id_notifications"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
        sa.UniqueConstraint("notification_id", "channel", name=op.f("uq_notification_deliveries_notification_id")),
    )
    op.create_index(op.f("ix_notification_deliveries_next_attempt_at"), "notification_deliveries", ["next_attempt_at"])
    op.create_index(op.f("ix_notification_deliveries_notification_id"), "notification_deliveries", ["notification_id"])


def downgrade() -> None:
    op.drop_table("notification_deliveries")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("read_at")
    op.drop_table("alarm_cursors")
    op.drop_table("alarm_conditions")
    op.drop_table("alarm_transitions")
    op.drop_table("alarms")
    op.drop_table("alarm_rules")
