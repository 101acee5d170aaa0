"""Forwarded batches, issuing jobs, unit contacts, credentials status, retired codes, audit log.

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("credentials_id", sa.Uuid()))
        batch.add_column(sa.Column("credentials_status", sa.String(30)))
        batch.add_column(sa.Column("credentials_status_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("password_changed_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("last_signin_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("created_by", sa.Uuid()))
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("unit_type", sa.String(40)))
        batch.add_column(sa.Column("reference", sa.String(40)))
        batch.add_column(sa.Column("contact_name", sa.String(200)))
        batch.add_column(sa.Column("contact_position", sa.String(200)))
        batch.add_column(sa.Column("contact_phone", sa.String(40)))
        batch.add_column(sa.Column("contact_email", sa.String(254)))
        batch.add_column(sa.Column("tax_code", sa.String(40)))
        batch.add_column(sa.Column("batch_id", sa.Uuid()))
        batch.create_index("ix_units_batch_id", ["batch_id"])
    with op.batch_alter_table("venues") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("disabled_reason", sa.String(300)))
    op.create_index("ix_venues_unit_created", "venues", ["unit_id", "created_at"])

    op.create_table(
        "retired_codes",
        sa.Column("code", sa.String(20), primary_key=True),
        sa.Column("venue_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "forwarded_batches",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("district_path", sa.String(60), nullable=False, index=True),
        sa.Column("unit_count", sa.Integer(), nullable=False),
        sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "forwarded_units",
        sa.Column("batch_id", sa.Uuid(), primary_key=True),
        sa.Column("registration_id", sa.Uuid(), primary_key=True, index=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column("unit_name", sa.String(300), nullable=False),
        sa.Column("unit_type", sa.String(40), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("tax_code", sa.String(40)),
        sa.Column("contact_name", sa.String(200), nullable=False),
        sa.Column("contact_position", sa.String(200)),
        sa.Column("contact_phone", sa.String(40), nullable=False),
        sa.Column("contact_email", sa.String(254)),
        sa.Column("venue_count", sa.Integer(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.Uuid()),
        sa.Column("error", sa.String(300)),
        sa.Column("issued_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_forwarded_units_batch_status", "forwarded_units", ["batch_id", "status", "position"])
    op.create_table(
        "issue_jobs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("batch_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("registration_id", sa.Uuid()),
        sa.Column("district_path", sa.String(60), nullable=False, index=True),
        sa.Column("requested_by", sa.Uuid()),
        sa.Column("requested_by_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("with_email", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Double()),
        sa.Column("error", sa.String(300)),
    )
    op.create_index("ix_issue_jobs_status", "issue_jobs", ["status", "created_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor_id", sa.Uuid()),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(30), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("unit_id", sa.Uuid(), index=True),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("path", sa.String(60), nullable=False, index=True),
        sa.Column("detail", sa.String(300)),
    )


def downgrade() -> None:
    for table in ("audit_log", "issue_jobs", "forwarded_units", "forwarded_batches", "retired_codes"):
        op.drop_table(table)
    op.drop_index("ix_venues_unit_created", "venues")
    with op.batch_alter_table("venues") as batch:
        batch.drop_column("disabled_reason")
        batch.drop_column("updated_at")
    with op.batch_alter_table("units") as batch:
        batch.drop_index("ix_units_batch_id")
        for column in ("batch_id", "tax_code", "contact_email", "contact_phone", "contact_position",
                       "contact_name", "reference", "unit_type"):
            batch.drop_column(column)
    with op.batch_alter_table("accounts") as batch:
        for column in ("created_by", "last_signin_at", "password_changed_at", "credentials_status_at",
                       "credentials_status", "credentials_id"):
            batch.drop_column(column)
