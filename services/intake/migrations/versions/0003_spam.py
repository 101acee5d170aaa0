"""Registration spam: the client address of a public registration and its spam flags.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("registrations", sa.Column("client_address", sa.String(64)))
    op.add_column("registrations", sa.Column("spam_reasons", sa.String(200)))
    op.create_index("ix_registrations_client_address", "registrations", ["client_address"])
    op.create_index("ix_registrations_contact_email", "registrations", ["contact_email"])


def downgrade() -> None:
    op.drop_index("ix_registrations_contact_email", "registrations")
    op.drop_index("ix_registrations_client_address", "registrations")
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("spam_reasons")
        batch.drop_column("client_address")
