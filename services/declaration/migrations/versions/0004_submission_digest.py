"""Idempotency keys bound to their request: a digest of the request beside each key.

Revision ID: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # Nullable: the submissions stored before have none (their key is never answered with
    # another request's data: declare.answer_for_key refuses a missing digest).
    op.add_column("submissions", sa.Column("digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("digest")
