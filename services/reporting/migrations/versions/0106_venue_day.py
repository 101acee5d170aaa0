"""An area's busiest venues and alerts read by equality: one row per venue and day (all
results together, the red ones counted apart) with the venue's district, indexed per day,
district, commune and unit; alerts get their district and the same indexes with the time
they were raised.

``venue_daily`` had a row per venue, day and screening result and only a commune column,
so a district's or the city's busiest venues summed every row through a ``LIKE`` filter
that no index serves under a non-C collation. Its rows are carried over, then it is
dropped. Commune paths are digits and slashes: the district is the path without its last
part (``rtrim`` works alike on PostgreSQL and SQLite).

Revision ID: 0106
Revises: 0105
"""
import sqlalchemy as sa
from alembic import op

revision = "0106"
down_revision = "0105"

SUMS = ("venue_id, day, max(venue_code), {unit}, rtrim(rtrim(max(commune_path), '0123456789'), '/'),"
        " max(commune_path), sum(declarations), sum(CASE WHEN result = 'red' THEN declarations ELSE 0 END)")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "venue_day",
        sa.Column("venue_id", sa.Uuid(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),  # local day (Vietnam time)
        sa.Column("venue_code", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("district_path", sa.String(60), nullable=False),
        sa.Column("commune_path", sa.String(60), nullable=False),
        sa.Column("declarations", sa.Integer(), nullable=False),
        sa.Column("red", sa.Integer(), nullable=False),
    )
    # The sums a dashboard needs are in the index (an index-only scan on PostgreSQL).
    covering = {"postgresql_include": ["venue_id", "declarations", "red"]}
    op.create_index("venue_day_day", "venue_day", ["day"], **covering)
    op.create_index("venue_day_district_day", "venue_day", ["district_path", "day"], **covering)
    op.create_index("venue_day_commune_day", "venue_day", ["commune_path", "day"], **covering)
    op.create_index("venue_day_unit_day", "venue_day", ["unit_id", "day"], **covering)
    columns = SUMS.format(unit="(array_agg(unit_id))[1]" if postgres else "max(unit_id)")
    op.execute(f"INSERT INTO venue_day (venue_id, day, venue_code, unit_id, district_path, commune_path,"  # noqa: S608
               f" declarations, red) SELECT {columns} FROM venue_daily GROUP BY venue_id, day")
    op.drop_table("venue_daily")

    op.add_column("alert_facts", sa.Column("district_path", sa.String(60)))
    op.execute("UPDATE alert_facts SET district_path = rtrim(rtrim(commune_path, '0123456789'), '/')")
    with op.batch_alter_table("alert_facts") as batch:
        batch.alter_column("district_path", existing_type=sa.String(60), nullable=False)
    op.create_index("alert_facts_raised", "alert_facts", ["raised_at"],
                    postgresql_include=["commune_path", "acknowledged_at", "escalated_at"])
    op.create_index("alert_facts_district_raised", "alert_facts", ["district_path", "raised_at"])
    op.create_index("alert_facts_commune_raised", "alert_facts", ["commune_path", "raised_at"])
    op.create_index("alert_facts_unit_raised", "alert_facts", ["unit_id", "raised_at"])


def downgrade() -> None:
    for index in ("alert_facts_unit_raised", "alert_facts_commune_raised", "alert_facts_district_raised",
                  "alert_facts_raised"):
        op.drop_index(index, "alert_facts")
    with op.batch_alter_table("alert_facts") as batch:
        batch.drop_column("district_path")
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
    # The results other than red were not kept apart: they come back as green.
    op.execute("INSERT INTO venue_daily (venue_id, day, result, venue_code, unit_id, commune_path, declarations)"
               " SELECT venue_id, day, 'green', venue_code, unit_id, commune_path, declarations - red"
               " FROM venue_day WHERE declarations > red")
    op.execute("INSERT INTO venue_daily (venue_id, day, result, venue_code, unit_id, commune_path, declarations)"
               " SELECT venue_id, day, 'red', venue_code, unit_id, commune_path, red FROM venue_day WHERE red > 0")
    op.drop_table("venue_day")
