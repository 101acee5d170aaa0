"""Fixtures shared by the cross-service tests: one backend per parameter.

``backend`` is "embedded" (SQLite + the embedded bus) or "kafka" (PostgreSQL + Kafka);
the same tests run on both. Each test gets fresh databases and its own bus namespace.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests import engines


@dataclass
class Backend:
    name: str
    tmp: Path
    bus_url: str
    namespace: str
    admin_url: str | None = None
    created: list[str] = field(default_factory=list)

    async def database_url(self, label: str = "db") -> str:
        """A new empty database for one service of this test."""
        if self.name == "embedded":
            return f"sqlite+aiosqlite:///{self.tmp / (label + '.db')}"
        name = f"t_{label}_{uuid.uuid4().hex[:10]}"
        conn = await _admin(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self.created.append(name)
        return make_url(self.admin_url).set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False)

    def bus_options(self) -> dict:
        return {"namespace": self.namespace} if self.name == "kafka" else {}

    async def drop(self) -> None:
        if not self.created:
            return
        conn = await _admin(self.admin_url)
        try:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def _admin(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(user=parsed.username, password=parsed.password, host=parsed.host,
                                 port=parsed.port or 5432, database=parsed.database or "postgres")


@pytest.fixture(params=["embedded", "kafka"])
async def backend(request, tmp_path):
    namespace = f"t{uuid.uuid4().hex[:8]}."
    if request.param == "embedded":
        yield Backend("embedded", tmp_path, f"embedded://{tmp_path / 'bus.db'}", namespace)
        return
    pg, kafka = engines.postgres_url(), engines.kafka_bootstrap()
    if pg is None:
        engines.unavailable("PostgreSQL")
    if kafka is None:
        engines.unavailable("Kafka")
    backend = Backend("kafka", tmp_path, f"kafka://{kafka}", namespace, admin_url=pg)
    try:
        yield backend
    finally:
        await backend.drop()
