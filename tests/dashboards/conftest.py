"""Fixtures of the dashboard tests: the reporting service alone, on either backend,
fed with events through its own outbox (the real relay, bus and consumer)."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from libs.common.outbox import publish
from tests.services.conftest import (  # noqa: F401 - fixtures shared with the service tests
    CITY, _clean_environment, build_settings, eventually, keys, make_keys, make_settings, mint, run_services,
)


@contextlib.asynccontextmanager
async def reporting_on(backend, keys, **overrides) -> AsyncIterator:  # noqa: ANN001
    """The reporting app on ``backend`` (SQLite + embedded bus, or PostgreSQL + Kafka)."""
    values = {"database_url": await backend.database_url("reporting"), "bus_url": backend.bus_url,
              "bus_namespace": backend.namespace if backend.name == "kafka" else "", **overrides}
    settings = build_settings("reporting", keys, **values)
    async with run_services({"reporting": settings}) as running:
        yield running


async def feed(running, events) -> None:  # noqa: ANN001
    """Publish events through reporting's outbox: relay -> bus -> reporting's consumer."""
    database = running.runtime("reporting").database
    for start in range(0, len(events), 200):
        async with database.transaction() as session:
            await publish(session, *events[start:start + 200])


async def processed(running, events) -> bool:  # noqa: ANN001
    """Whether reporting's consumer has handled every one of ``events``."""
    from sqlalchemy import func, select

    from libs.common.outbox import processed_events

    ids = [str(e.id) for e in events]
    async with running.runtime("reporting").database.transaction(readonly=True) as session:
        done = 0
        for start in range(0, len(ids), 500):
            done += (await session.execute(select(func.count()).select_from(processed_events).where(
                processed_events.c.consumer == "reporting",
                processed_events.c.event_id.in_(ids[start:start + 500])))).scalar_one()
    return done == len(ids)


@pytest.fixture
def backend_keys(keys):  # noqa: ANN001
    return keys
