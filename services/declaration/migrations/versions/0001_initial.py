"""Venue copy, outbox and processed events.

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
        "venues",
        sa.Column("venue_id", sa.Uuid(), primary_key=True),
        sa.Column("code", sa.String(20), nullable=False, unique=True),
        sa.Column("unit_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("unit_name", sa.String(300), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("active", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    for table in ("venues", "processed_events", "outbox"):
        op.drop_table(table)
