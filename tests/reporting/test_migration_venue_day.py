"""Migration 0106 carries the venue-day counts and the alerts of a running deployment over
to the tables the dashboards read by equality, on SQLite and on PostgreSQL."""
from __future__ import annotations

from datetime import date, datetime
from uuid import uuid4

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table, Uuid, select

from libs.common import migrate
from libs.common.db import Database
from services.reporting.aggregates import alert_facts, venue_day

from .conftest import MIGRATIONS

old = MetaData()
venue_daily = Table(  # as revision 0103 created it
    "venue_daily", old,
    Column("venue_id", Uuid(), primary_key=True),
    Column("day", Date(), primary_key=True),
    Column("result", String(10), primary_key=True),
    Column("venue_code", String(20), nullable=False),
    Column("unit_id", Uuid(), nullable=False),
    Column("commune_path", String(60), nullable=False),
    Column("declarations", Integer(), nullable=False),
)
old_alerts = Table(
    "alert_facts", old,
    Column("alert_id", Uuid(), primary_key=True),
    Column("commune_path", String(60), nullable=False),
    Column("raised_at", DateTime(), nullable=False),
)


async def test_venue_days_and_alerts_are_carried_over(backend):
    database = Database(await backend.database_url("reporting"))
    try:
        await migrate.upgrade(database, MIGRATIONS, "reporting", "0105")
        market, school, unit = uuid4(), uuid4(), uuid4()
        first, second = date(2021, 7, 1), date(2021, 7, 2)
        alert = uuid4()
        async with database.transaction() as session:
            await session.execute(venue_daily.insert(), [
                {"venue_id": market, "day": first, "result": result, "venue_code": "CHOBINHTAY", "unit_id": unit,
                 "commune_path": "79/787/27664", "declarations": n}
                for result, n in (("green", 40), ("yellow", 7), ("red", 3))
            ] + [
                {"venue_id": market, "day": second, "result": "green", "venue_code": "CHOBINHTAY", "unit_id": unit,
                 "commune_path": "79/787/27664", "declarations": 5},
                {"venue_id": school, "day": first, "result": "red", "venue_code": "TRUONGTHCS", "unit_id": unit,
                 "commune_path": "79/760/26734", "declarations": 2},
            ])
            await session.execute(old_alerts.insert().values(alert_id=alert, commune_path="79/760/26734",
                                                             raised_at=datetime(2021, 7, 1, 9, 0)))
        await migrate.upgrade(database, MIGRATIONS, "reporting")

        async with database.transaction(readonly=True) as session:
            rows = {(r.venue_id, r.day): r for r in (await session.execute(select(venue_day))).all()}
            district = (await session.execute(select(alert_facts.c.district_path))).scalar_one()
        assert set(rows) == {(market, first), (market, second), (school, first)}
        assert (rows[(market, first)].declarations, rows[(market, first)].red) == (50, 3)
        assert (rows[(market, second)].declarations, rows[(market, second)].red) == (5, 0)
        assert (rows[(school, first)].declarations, rows[(school, first)].red) == (2, 2)
        assert rows[(market, first)].district_path == "79/787"
        assert rows[(school, first)].commune_path == "79/760/26734"
        assert rows[(market, first)].venue_code == "CHOBINHTAY" and rows[(market, first)].unit_id == unit
        assert district == "79/760"
    finally:
        await database.dispose()
