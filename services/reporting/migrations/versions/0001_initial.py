"""Registration facts, outbox and processed events.

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
        "registration_facts",
        sa.Column("registration_id", sa.Uuid(), primary_key=True),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("unit_type", sa.String(40), nullable=False),
        sa.Column("receiver", sa.String(10), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registration_facts")
    op.drop_table("processed_events")
    op.drop_table("outbox")
