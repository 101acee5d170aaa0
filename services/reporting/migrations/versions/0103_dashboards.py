"""Aggregates of the dashboards: declarations per area and hour, per venue and day,
first declaration per unit, units issued, alerts.

Revision ID: 0103
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0103"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "declaration_hourly",
        sa.Column("area", sa.String(60), primary_key=True),
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("result", sa.String(10), primary_key=True),
        sa.Column("declarations", sa.Integer(), nullable=False),
    )
    op.create_table(
        "venue_daily",
        sa.Column("venue_id", sa.Uuid(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("result", sa.String(10), primary_key=True),
        sa.Column("venue_code", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False),
        sa.Column("declarations", sa.Integer(), nullable=False),
    )
    op.create_index("venue_daily_commune_day", "venue_daily", ["commune_path", "day"])
    op.create_index("venue_daily_unit_day", "venue_daily", ["unit_id", "day"])
    op.create_table(
        "unit_live",
        sa.Column("unit_id", sa.Uuid(), primary_key=True),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("first_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "unit_issued",
        sa.Column("unit_id", sa.Uuid(), primary_key=True),
        sa.Column("registration_id", sa.Uuid()),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "alert_facts",
        sa.Column("alert_id", sa.Uuid(), primary_key=True),
        sa.Column("commune_path", sa.String(60), nullable=False, index=True),
        sa.Column("unit_id", sa.Uuid()),
        sa.Column("venue_id", sa.Uuid()),
        sa.Column("source", sa.String(20)),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime()),
        sa.Column("escalated_at", sa.DateTime()),
    )


def downgrade() -> None:
    for table in ("alert_facts", "unit_issued", "unit_live", "venue_daily", "declaration_hourly"):
        op.drop_table(table)
