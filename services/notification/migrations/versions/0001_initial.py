"""Notices, outbox and processed events.

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
        "notices",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("recipient_path", sa.String(60), nullable=False, index=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("reference", sa.String(40)),
        sa.Column("source_event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    for table in ("notices", "processed_events", "outbox"):
        op.drop_table(table)
