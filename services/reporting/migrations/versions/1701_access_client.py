"""The access log records the client address of each read, export or refusal (as the rate
limits derive it: an IPv6 address by its /64), and refusals before any read (issue 17).

Revision ID: 1701 (after 0701)
"""
import sqlalchemy as sa
from alembic import op

revision = "1701"
down_revision = "0701"


def upgrade() -> None:
    op.add_column("access_log", sa.Column("client_address", sa.String(64), nullable=True))
    op.create_index("access_log_outcome", "access_log", ["outcome"])


def downgrade() -> None:
    op.drop_index("access_log_outcome", "access_log")
    with op.batch_alter_table("access_log") as batch:
        batch.drop_column("client_address")
