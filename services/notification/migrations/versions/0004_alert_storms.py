"""Alert storms: the reds of one person at a venue fold into one alert with a count, the
reds beyond the burst threshold into one burst alert; each red declaration of an alert is
a row of ``alert_declarations``; ``alert_venues`` is the per-venue row locked while a red
is placed.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="single"))
        batch.add_column(sa.Column("declarations", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("latest_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("phone_key", sa.String(64)))
        batch.add_column(sa.Column("id_key", sa.String(64)))
    op.execute("UPDATE alerts SET latest_at = raised_at")
    op.create_index("ix_alerts_venue_latest", "alerts", ["venue_id", "latest_at"])
    op.create_table(
        "alert_declarations",
        sa.Column("declaration_id", sa.Uuid(), primary_key=True),
        sa.Column("alert_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("venue_id", sa.Uuid(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("reasons", sa.String(2000), nullable=False),
        sa.Column("symptoms", sa.String(2000), nullable=False),
        sa.Column("initials", sa.String(20), nullable=False),
        sa.Column("person", sa.String(4000)),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_alert_declarations_venue", "alert_declarations", ["venue_id", "submitted_at"])
    op.create_index("ix_alert_declarations_received", "alert_declarations", ["received_at"])
    op.create_table(
        "alert_venues",
        sa.Column("venue_id", sa.Uuid(), primary_key=True),
        sa.Column("burst_alert_id", sa.Uuid()),
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_venues")
    op.drop_table("alert_declarations")
    op.drop_index("ix_alerts_venue_latest", "alerts")
    with op.batch_alter_table("alerts") as batch:
        for column in ("id_key", "phone_key", "latest_at", "declarations", "kind"):
            batch.drop_column(column)
