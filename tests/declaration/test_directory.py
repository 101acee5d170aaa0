"""The web worker's memory of venues and rules: fast, and never stale for long."""
from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import update

from libs.common import migrate
from libs.common.db import Database
from services.declaration.directory import RETIRED, Directory
from services.declaration.models import RetiredCode, Venue
from services.declaration.screening import ensure_rule_set

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "declaration" / "migrations"


async def test_changes_reach_the_cache_within_its_period(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    await migrate.upgrade(database, MIGRATIONS, "declaration")
    venue_id = uuid.uuid4()
    async with database.transaction() as session:
        await ensure_rule_set(session)
        await ensure_rule_set(session)  # a second worker starting: nothing more
        session.add(Venue(venue_id=venue_id, code="AAAA2345", unit_id=uuid.uuid4(), unit_name="Chợ", name="Cổng",
                          address="x", commune_path="79/787/27664", active=True, updated_at=time.time()))
    directory = Directory(database, cache_seconds=0.3)
    await directory.load()
    assert (await directory.venue("aaaa2345")).active and (await directory.rules()).version == "2021-06"

    # Created after the load: looked up in the database at once.
    async with database.transaction() as session:
        session.add(Venue(venue_id=uuid.uuid4(), code="BBBB2345", unit_id=uuid.uuid4(), unit_name="Chợ",
                          name="Cổng 2", address="x", commune_path="79/787/27664", active=True,
                          updated_at=time.time()))
    assert (await directory.venue("BBBB2345")).name == "Cổng 2"
    assert await directory.venue("NOPE2345") is None

    # Closed and its code rotated: seen within the cache period, the old code retired.
    async with database.transaction() as session:
        session.add(RetiredCode(code="AAAA2345", venue_id=venue_id, retired_at=datetime.now(UTC)))
        await session.execute(update(Venue).where(Venue.venue_id == venue_id)
                              .values(code="CCCC2345", active=False, updated_at=time.time()))
    deadline = time.monotonic() + 5
    while (await directory.venue("AAAA2345")) not in (RETIRED,):
        assert time.monotonic() < deadline, "the rotation never reached the cache"
        await asyncio.sleep(0.1)
    assert (await directory.venue("CCCC2345")).active is False
    await directory.close()
    await database.dispose()
