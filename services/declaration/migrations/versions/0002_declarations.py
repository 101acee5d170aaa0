"""Declarations, submissions (idempotency), rule sets, gate entries, suspected cases.

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("venues") as batch:
        batch.add_column(sa.Column("updated_at", sa.Float(), nullable=False, server_default="0"))
    op.create_table(
        "retired_codes",
        sa.Column("code", sa.String(20), primary_key=True),
        sa.Column("venue_id", sa.Uuid(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "declarations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("submission_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("member", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.Uuid(), nullable=False),
        sa.Column("venue_code", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("declared_by", sa.String(36)),
        sa.Column("full_name", sa.String(100), nullable=False),
        sa.Column("id_type", sa.String(10)),
        sa.Column("id_number", sa.String(20)),
        sa.Column("birth_date", sa.Date()),
        sa.Column("birth_year", sa.Integer(), nullable=False),
        sa.Column("gender", sa.String(8), nullable=False),
        sa.Column("nationality", sa.String(60), nullable=False),
        sa.Column("phone", sa.String(15)),
        sa.Column("province_code", sa.String(10), nullable=False),
        sa.Column("district_code", sa.String(10), nullable=False),
        sa.Column("commune_code", sa.String(10), nullable=False),
        sa.Column("street", sa.String(200), nullable=False),
        sa.Column("symptoms", sa.String(200), nullable=False),
        sa.Column("symptom_other", sa.String(200)),
        sa.Column("exposures", sa.String(200), nullable=False),
        sa.Column("vaccine_doses", sa.Integer()),
        sa.Column("result", sa.String(8), nullable=False),
        sa.Column("reasons", sa.String(300), nullable=False),
        sa.Column("rule_version", sa.String(40), nullable=False),
    )
    op.create_index("declarations_venue_time", "declarations", ["venue_id", "submitted_at"])
    op.create_table(
        "submissions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("submission_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("venue_id", sa.Uuid(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rule_sets",
        sa.Column("version", sa.String(40), primary_key=True),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200)),
    )
    op.create_table(
        "gate_entries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("venue_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declaration_id", sa.Uuid()),
        sa.Column("result", sa.String(10), nullable=False),
        sa.Column("recorded_by", sa.String(36), nullable=False),
    )
    op.create_index("gate_entries_venue_time", "gate_entries", ["venue_id", "at"])
    op.create_table(
        "suspected_cases",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("venue_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_by", sa.String(36), nullable=False),
        sa.Column("raised_by_name", sa.String(200), nullable=False),
        sa.Column("declaration_id", sa.Uuid()),
        sa.Column("full_name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(15)),
        sa.Column("id_number", sa.String(20)),
        sa.Column("symptoms", sa.String(200), nullable=False),
        sa.Column("note", sa.String(1000)),
    )


def downgrade() -> None:
    for table in ("suspected_cases", "gate_entries", "rule_sets", "submissions", "declarations", "retired_codes"):
        op.drop_table(table)
    with op.batch_alter_table("venues") as batch:
        batch.drop_column("updated_at")
