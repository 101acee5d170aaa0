"""Interoperability clients: machines of national systems with a secret of their own
(argon2 hash), scopes and a jurisdiction, issued by the city (``khaibao accounts create-client``).

Revision ID: 0701 (a branch of its own from 0002, applied with the other heads)
"""
import sqlalchemy as sa
from alembic import op

revision = "0701"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "interop_clients",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("client_id", sa.String(80), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("jurisdiction", sa.String(60), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("last_token_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("interop_clients")
