"""The sign-in history (issue 16): sign-ins, sign-outs, password changes and resets,
accounts disabled and enabled, with the client address and the outcome.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "signin_events",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(30), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("username", sa.String(80), nullable=False),
        sa.Column("account_id", sa.Uuid()),
        sa.Column("role", sa.String(30)),
        sa.Column("jurisdiction", sa.String(60)),
        sa.Column("unit_id", sa.Uuid()),
        sa.Column("address", sa.String(64)),
        sa.Column("actor_id", sa.Uuid()),
        sa.Column("actor_name", sa.String(200)),
        sa.Column("detail", sa.String(60)),
    )
    op.create_index("ix_signin_events_at", "signin_events", ["at"])
    op.create_index("ix_signin_events_account_id", "signin_events", ["account_id", "at"])
    op.create_index("ix_signin_events_jurisdiction", "signin_events", ["jurisdiction", "at"])


def downgrade() -> None:
    op.drop_table("signin_events")
