"""The access log records the purpose of each read (``case_investigation``, ``ncovi_sync``):
interoperability clients and health officers give one on every person-level export.

Revision ID: 0701 (a branch of its own from 0005, applied with the other heads)
"""
import sqlalchemy as sa
from alembic import op

revision = "0701"
down_revision = "0005"


def upgrade() -> None:
    op.add_column("access_log", sa.Column("purpose", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("purpose")
