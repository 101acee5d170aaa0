"""Migration 0701 of declaration: the rule sets of a running deployment keep their state;
each version published before (active at once) gets its publication as ``activated_at``,
so /rules shows them as active or earlier, never as waiting for approval. SQLite and
PostgreSQL."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Text, select

from libs.common import migrate
from libs.common.db import Database
from services.declaration import app as declaration_app
from services.declaration.models import RuleSet

MIGRATIONS = Path(declaration_app.__file__).parent / "migrations"
old = MetaData()
rule_sets = Table(  # as revision 0002 created it
    "rule_sets", old,
    Column("version", String(40), primary_key=True),
    Column("rules", Text(), nullable=False),
    Column("active", Boolean(), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200)),
)


async def test_published_versions_count_as_activated(backend):
    database = Database(await backend.database_url("declaration"))
    try:
        await migrate.upgrade(database, MIGRATIONS, "declaration", "0004")
        first, second = datetime(2021, 6, 1, 8, tzinfo=UTC), datetime(2021, 7, 1, 8, tzinfo=UTC)
        async with database.transaction() as session:
            await session.execute(rule_sets.insert(), [
                {"version": "2021-06", "rules": "{}", "active": False, "created_at": first, "created_by": "system"},
                {"version": "2021-07", "rules": "{}", "active": True, "created_at": second, "created_by": "Sở"},
            ])
        await migrate.upgrade(database, MIGRATIONS, "declaration")
        async with database.transaction(readonly=True) as session:
            rows = {r.version: r for r in (await session.execute(select(RuleSet))).scalars()}
        assert {v: r.state for v, r in rows.items()} == {"2021-06": "earlier", "2021-07": "active"}
        assert rows["2021-07"].activated_at == second and rows["2021-07"].approved_by is None
    finally:
        await database.dispose()
