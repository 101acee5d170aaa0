"""Two-person rule for screening rule sets: who proposed a version (account id), who
approved it and when, when it became active, or who withdrew or declined it.

The versions stored before were active from their publication: ``activated_at`` is their
``created_at``.

Revision ID: 0701 (a branch of its own from 0004, applied with the other heads)
"""
import sqlalchemy as sa
from alembic import op

revision = "0701"
down_revision = "0004"

COLUMNS = (
    ("created_by_id", sa.String(64)), ("approved_at", sa.DateTime(timezone=True)), ("approved_by", sa.String(200)),
    ("approved_by_id", sa.String(64)), ("activated_at", sa.DateTime(timezone=True)),
    ("rejected_at", sa.DateTime(timezone=True)), ("rejected_by", sa.String(200)),
)


def upgrade() -> None:
    with op.batch_alter_table("rule_sets") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.execute("UPDATE rule_sets SET activated_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("rule_sets") as batch:
        for name, _kind in reversed(COLUMNS):
            batch.drop_column(name)
