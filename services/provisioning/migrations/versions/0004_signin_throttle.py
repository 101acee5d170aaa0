"""Sign-in throttling replaces the lock-out: throttle counters, the owner's failed attempts.

The lock-out's columns go (``accounts.failed_signins``, ``accounts.locked_until``): a
lock-out refused the owner's correct password (issue 16); throttle.py slows down the
places failures come from instead.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "signin_throttle",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.Double(), nullable=False),
        sa.Column("last_failure_at", sa.Double(), nullable=False),
        sa.Column("trusted_until", sa.Double()),
    )
    op.create_index("ix_signin_throttle_last_failure_at", "signin_throttle", ["last_failure_at"])
    op.create_table(
        "signin_failures",
        sa.Column("account_id", sa.Uuid(), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_signins")


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("failed_signins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True)))
    op.drop_table("signin_failures")
    op.drop_index("ix_signin_throttle_last_failure_at", "signin_throttle")
    op.drop_table("signin_throttle")
