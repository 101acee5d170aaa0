"""Deployment reports of the districts (circular 2.3): durable jobs and their files.

Revision ID: 0104
Revises: 0103
"""
import sqlalchemy as sa
from alembic import op

revision = "0104"
down_revision = "0103"


def upgrade() -> None:
    op.create_table(
        "deployment_reports",
        sa.Column("report_id", sa.Uuid(), primary_key=True),
        sa.Column("district_path", sa.String(60), nullable=False, index=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("trigger", sa.String(12), nullable=False),
        # One scheduled report per district and period, however many replicas run.
        sa.Column("schedule_key", sa.String(40), unique=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("generated_at", sa.DateTime()),
        sa.Column("by_name", sa.String(200), nullable=False),
        sa.Column("summary", sa.JSON()),
        sa.Column("xlsx", sa.LargeBinary()),
        sa.Column("pdf", sa.LargeBinary()),
        sa.Column("error", sa.String(300)),
    )


def downgrade() -> None:
    op.drop_table("deployment_reports")
