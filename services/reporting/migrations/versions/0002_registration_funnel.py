"""The registration funnel: each registration's latest review state, sent and forwarded flags.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "registration_funnel",
        sa.Column("registration_id", sa.Uuid(), primary_key=True),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("receiver", sa.String(10)),
        sa.Column("submitted", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True)),
        sa.Column("exempt_reason", sa.String(40)),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("forwarded", sa.Boolean(), nullable=False),
    )
    # Registrations counted before this revision were all submitted, none reviewed yet.
    op.execute(
        "INSERT INTO registration_funnel (registration_id, commune_path, receiver, submitted, status, status_at, "
        "late, sent, forwarded) SELECT registration_id, commune_path, receiver, TRUE, 'submitted', submitted_at, "
        "late, FALSE, FALSE FROM registration_facts"
    )


def downgrade() -> None:
    op.drop_table("registration_funnel")
