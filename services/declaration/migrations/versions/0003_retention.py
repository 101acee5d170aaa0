"""Retention: declarations whose personal fields were erased, and where the erasing resumes.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("declarations", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    cursor = op.create_table(
        "retention_cursor",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("erased_through", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.bulk_insert(cursor, [{"name": "declarations", "erased_through": None, "updated_at": None}])


def downgrade() -> None:
    op.drop_table("retention_cursor")
    with op.batch_alter_table("declarations") as batch:
        batch.drop_column("erased_at")
