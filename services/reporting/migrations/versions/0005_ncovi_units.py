"""Units already on NCOVI, imported by the city or a district (not asked to deploy).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "ncovi_units",
        sa.Column("entry_id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("name_key", sa.String(300), nullable=False, index=True),
        sa.Column("address", sa.String(500), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("tax_code", sa.String(20), index=True),
        sa.Column("ncovi_id", sa.String(40), index=True),
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("imported_by", sa.String(120), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ncovi_units")
