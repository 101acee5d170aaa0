"""Visits (one row per declaration, for exposure queries and the FHIR export) and the
access log of officials' reads of personal data.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("declaration_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("venue_id", sa.Uuid(), nullable=False),
        sa.Column("venue_code", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("result", sa.String(10), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("rule_version", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("group_size", sa.Integer(), nullable=False),
        sa.Column("full_name", sa.String(200)),
        sa.Column("phone", sa.String(30)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
    )
    op.create_index("visits_venue_time", "visits", ["venue_id", "submitted_at"])
    op.create_table(
        "access_log",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_username", sa.String(120), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(30), nullable=False),
        sa.Column("actor_jurisdiction", sa.String(60), nullable=False, index=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.String(60)),
        sa.Column("case_reference", sa.String(80)),
        sa.Column("reason", sa.String(500)),
        sa.Column("scope_path", sa.String(60), nullable=False, index=True),
        sa.Column("venue_id", sa.Uuid()),
        sa.Column("venue_name", sa.String(300)),
        sa.Column("declaration_id", sa.Uuid()),
        sa.Column("window_start", sa.DateTime(timezone=True)),
        sa.Column("window_end", sa.DateTime(timezone=True)),
        sa.Column("row_count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("access_log")
    op.drop_table("visits")
