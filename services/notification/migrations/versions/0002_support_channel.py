"""Credentials deliveries, the Support Channel, forwarded batches, credentials access log.

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("source_event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("group_key", sa.String(80), nullable=False, index=True),
        sa.Column("credentials_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("username", sa.String(80), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("unit_name", sa.String(300), nullable=False),
        sa.Column("unit_address", sa.String(300), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False),
        sa.Column("district_path", sa.String(60), nullable=False, index=True),
        sa.Column("reference", sa.String(40)),
        sa.Column("contact_name", sa.String(200)),
        sa.Column("contact_email", sa.String(254)),
        sa.Column("sealed", sa.String(400)),
        sa.Column("signin_url", sa.String(300), nullable=False),
        sa.Column("guide_url", sa.String(300), nullable=False),
        sa.Column("posters_url", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("channel_reason", sa.String(20)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("deadline_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.String(200)),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Double()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("landed_at", sa.DateTime(timezone=True)),
        sa.Column("opened_at", sa.DateTime(timezone=True)),
        sa.Column("opened_by_name", sa.String(200)),
        sa.Column("handed_over_at", sa.DateTime(timezone=True)),
        sa.Column("handed_over_by_name", sa.String(200)),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "credential_access",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("delivery_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("account_id", sa.Uuid()),
        sa.Column("account_name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "support_threads",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("district_path", sa.String(60), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "support_messages",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("thread_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("side", sa.String(10), nullable=False),
        sa.Column("author_id", sa.Uuid()),
        sa.Column("author_name", sa.String(200), nullable=False),
        sa.Column("body", sa.String(5000), nullable=False),
        sa.Column("params", sa.String(2000), nullable=False),
        sa.Column("source_key", sa.String(120), unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by_name", sa.String(200)),
    )
    op.create_index("ix_support_messages_thread_created", "support_messages", ["thread_id", "created_at"])
    op.create_table(
        "support_attachments",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("message_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary()),
        sa.Column("batch_id", sa.Uuid()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "support_reads",
        sa.Column("thread_id", sa.Uuid(), primary_key=True),
        sa.Column("account_id", sa.Uuid(), primary_key=True),
        sa.Column("last_read_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("district_path", sa.String(60), nullable=False, index=True),
        sa.Column("unit_count", sa.Integer(), nullable=False),
        sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.Uuid()),
    )
    op.create_table(
        "batch_units",
        sa.Column("batch_id", sa.Uuid(), primary_key=True),
        sa.Column("registration_id", sa.Uuid(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("unit_name", sa.String(300), nullable=False),
        sa.Column("unit_type", sa.String(40), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False),
        sa.Column("tax_code", sa.String(40)),
        sa.Column("contact_name", sa.String(200), nullable=False),
        sa.Column("contact_position", sa.String(200)),
        sa.Column("contact_phone", sa.String(40), nullable=False),
        sa.Column("contact_email", sa.String(254)),
        sa.Column("venue_count", sa.Integer(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    for table in ("batch_units", "batches", "support_reads", "support_attachments", "support_messages",
                  "support_threads", "credential_access", "deliveries"):
        op.drop_table(table)
