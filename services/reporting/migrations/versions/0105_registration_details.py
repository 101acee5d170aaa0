"""What a registration says about its unit (for the exports of registrations): reference,
name, type, address, and the contact person (shown only to the roles that may see it).

Revision ID: 0105
Revises: 0104
"""
import sqlalchemy as sa
from alembic import op

revision = "0105"
down_revision = "0104"


def upgrade() -> None:
    op.create_table(
        "registration_details",
        sa.Column("registration_id", sa.Uuid(), primary_key=True),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("unit_name", sa.String(300), nullable=False),
        sa.Column("unit_type", sa.String(40), nullable=False),
        sa.Column("address", sa.String(500), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("contact_name", sa.String(200), nullable=False),
        sa.Column("contact_phone", sa.String(40), nullable=False),
        sa.Column("contact_email", sa.String(200)),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registration_details")
