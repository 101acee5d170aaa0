"""Throwaway PostgreSQL databases for the benchmarks, on the server of an admin URL."""
from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy.engine import make_url


async def _admin(admin_url: str, statement: str) -> None:
    url = make_url(admin_url)
    conn = await asyncpg.connect(user=url.username, password=url.password, host=url.host, port=url.port or 5432,
                                 database=url.database or "postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(admin_url: str, prefix: str = "bench") -> tuple[str, str]:
    """A new, empty database: its name and its asyncpg SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return name, url.render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
