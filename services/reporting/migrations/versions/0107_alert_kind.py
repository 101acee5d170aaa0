"""Alert storms: an alert's kind (``single``, or ``burst`` for the one "unusual burst" alert
of a venue flooded with reds), from ``notification.alert.raised``; the dashboard marks the
venues with a burst in the period. Alerts raised before it are ``single`` (NULL reads so).

Revision ID: 0107
Revises: 0106
"""
import sqlalchemy as sa
from alembic import op

revision = "0107"
down_revision = "0106"


def upgrade() -> None:
    op.add_column("alert_facts", sa.Column("kind", sa.String(10)))
    op.create_index("alert_facts_venue_kind", "alert_facts", ["venue_id", "kind"])


def downgrade() -> None:
    op.drop_index("alert_facts_venue_kind", "alert_facts")
    with op.batch_alter_table("alert_facts") as batch:
        batch.drop_column("kind")
