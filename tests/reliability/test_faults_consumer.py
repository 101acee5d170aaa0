"""A consumer waits for a database that goes away; it dead-letters only what its handler cannot do.

Found by the faults-under-load suite: during a PostgreSQL restart asyncpg reports the server
shutting down (SQLSTATE 57P01) or starting up (57P03) as a plain DBAPIError, which the
consumer took for a handler failure: after five quick attempts the event went to the
dead-letter topic and was lost for the read model. Real errors from a real server here.
"""
from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from libs.common.consumer import is_transient
from libs.common.db import Database
from tests import engines


@pytest.fixture
async def database():
    url = engines.postgres_url()
    if url is None:
        engines.unavailable("PostgreSQL")
    db = Database(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    admin = await asyncpg.connect(url)
    try:
        yield db, admin
    finally:
        await admin.close()
        await db.dispose()


async def test_a_server_ending_the_session_is_transient(database) -> None:
    db, admin = database
    with pytest.raises(DBAPIError) as caught:
        async with db.transaction() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            # What every session gets from a fast shutdown (pg_ctl stop -m fast): 57P01.
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            await session.execute(text("SELECT 1"))
    assert is_transient(caught.value)


async def test_a_constraint_violation_is_not(database) -> None:
    db, _ = database
    with pytest.raises(DBAPIError) as caught:
        async with db.transaction() as session:
            await session.execute(text("CREATE TEMP TABLE t (id int PRIMARY KEY)"))
            await session.execute(text("INSERT INTO t VALUES (1), (1)"))
    assert getattr(caught.value.orig, "sqlstate", None) == "23505"
    assert not is_transient(caught.value)
