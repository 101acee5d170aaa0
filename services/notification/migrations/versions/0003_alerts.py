"""Suspected-case alerts, the offices' alert contacts, alert e-mails and webhooks.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("venue_id", sa.Uuid(), nullable=False),
        sa.Column("venue_code", sa.String(40), nullable=False),
        sa.Column("venue_name", sa.String(300), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("unit_name", sa.String(300), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("district_path", sa.String(60), nullable=False, index=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("reasons", sa.String(2000), nullable=False),
        sa.Column("symptoms", sa.String(2000), nullable=False),
        sa.Column("exposures", sa.String(2000), nullable=False),
        sa.Column("raised_by_name", sa.String(200)),
        sa.Column("initials", sa.String(20), nullable=False),
        sa.Column("person", sa.String(4000)),
        sa.Column("note", sa.String(2000)),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by_name", sa.String(200)),
        sa.Column("acknowledged_by_role", sa.String(30)),
        sa.Column("escalated_at", sa.DateTime(timezone=True)),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("source", "source_id", name="uq_alerts_source"),
    )
    op.create_index("ix_alerts_due", "alerts", ["status", "received_at"])
    op.create_table(
        "alert_contacts",
        sa.Column("office_path", sa.String(60), primary_key=True),
        sa.Column("emails", sa.String(2000), nullable=False),
        sa.Column("webhook_url", sa.String(500)),
        sa.Column("webhook_secret", sa.String(100)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_name", sa.String(200), nullable=False),
    )
    op.create_table(
        "alert_dispatches",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("alert_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("office_path", sa.String(60), nullable=False),
        sa.Column("target", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(200)),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Double()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("alert_id", "kind", "channel", "office_path", name="uq_alert_dispatch"),
    )
    op.create_table(
        "alert_access",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("alert_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("account_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alert_dispatches_due", "alert_dispatches", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("alert_access")
    op.drop_table("alert_dispatches")
    op.drop_table("alert_contacts")
    op.drop_table("alerts")
