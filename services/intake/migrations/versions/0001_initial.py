"""Registrations, outbox and processed events.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

from libs.common.outbox import create_common_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_common_tables(op)
    op.create_table(
        "registrations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("reference", sa.String(20), nullable=False, unique=True),
        sa.Column("unit_name", sa.String(300), nullable=False),
        sa.Column("unit_type", sa.String(40), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("receiver", sa.String(10), nullable=False),
        sa.Column("receiver_path", sa.String(60), nullable=False, index=True),
        sa.Column("tax_code", sa.String(20)),
        sa.Column("contact_name", sa.String(120), nullable=False),
        sa.Column("contact_position", sa.String(120)),
        sa.Column("contact_phone", sa.String(20), nullable=False),
        sa.Column("contact_email", sa.String(254)),
        sa.Column("venue_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registrations")
    op.drop_table("processed_events")
    op.drop_table("outbox")
