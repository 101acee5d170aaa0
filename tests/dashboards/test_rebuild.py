"""Rebuild: the read models emptied and rebuilt by replaying the topics from the start give
the same numbers as the live projection (and as the events counted by hand), on both
backends; the service started again counts nothing twice."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from libs.common.auth import Role
from libs.common.db import Database
from libs.common.outbox import outbox, processed_events
from services.reporting.aggregates import declaration_hourly, unit_live, venue_day
from services.reporting.handlers import funnel
from services.reporting.rebuild import rebuild
from services.reporting.service import today
from tests.services.conftest import build_settings

from .conftest import eventually, feed, processed, reporting_on
from .world import CAN_GIO, build_world, shuffled


async def _numbers(running, mint, day) -> dict:  # noqa: ANN001
    client = running["reporting"]
    params = {"start": (day - timedelta(days=1)).isoformat(), "end": day.isoformat()}
    numbers = {}
    for role, where in ((Role.CITY_DIC, "79"), (Role.DISTRICT_FOCAL, CAN_GIO)):
        body = (await client.get("/api/dashboard", params=params, headers=mint.headers(role, where))).json()
        numbers[where] = {"totals": body["totals"], "rows": body["rows"], "per_hour": body["per_hour"],
                          "per_day": body["per_day"], "alerts": body["alerts"], "venues": body["venues"]}
    numbers["counts"] = (await client.get("/api/registrations/counts", headers=mint.headers(Role.CITY_DIC))).json()
    return numbers


async def _relayed(running) -> bool:  # noqa: ANN001
    async with running.runtime("reporting").database.transaction(readonly=True) as session:
        return (await session.execute(select(func.count()).select_from(outbox))).scalar_one() == 0


@pytest.mark.slow
async def test_rebuild_gives_the_same_numbers(backend, keys, mint):
    day = today()
    world = build_world(day, declarations=150, seed=11)
    events = shuffled(world.events, seed=5)
    overrides = {"database_url": await backend.database_url("reporting"), "bus_url": backend.bus_url,
                 "bus_namespace": backend.namespace if backend.name == "kafka" else ""}
    async with reporting_on(backend, keys, **overrides) as running:
        await feed(running, events)
        # Some events twice on the bus (the relay delivers at least once): counted once, live and replayed.
        await feed(running, events[:40])
        await eventually(lambda: processed(running, events), timeout=90, what="events projected")
        await eventually(lambda: _relayed(running), timeout=90, what="the outbox relayed")
        live = await _numbers(running, mint, day)
    assert live["79"]["totals"]["declarations"] == sum(world.declarations.values())
    assert live["79"]["totals"]["flagged"] == sum(world.flagged.values())

    # Damage the read models (as a projection bug would): the rebuild must restore them from the events.
    database = Database(overrides["database_url"])
    async with database.transaction() as session:
        await session.execute(delete(declaration_hourly).where(declaration_hourly.c.area == CAN_GIO))
        await session.execute(update(venue_day).values(declarations=venue_day.c.declarations + 1))
        await session.execute(delete(unit_live))
        await session.execute(delete(funnel))
    await database.dispose()

    settings = build_settings("reporting", keys, **overrides)
    replayed = await rebuild(settings, idle_polls=2)
    assert replayed == len(world.events)  # each event once, the second copies skipped
    database = Database(overrides["database_url"])
    async with database.transaction(readonly=True) as session:  # the replay's own claims are gone
        claims = (await session.execute(select(processed_events.c.consumer).distinct())).scalars().all()
    await database.dispose()
    assert claims == ["reporting"]

    async with reporting_on(backend, keys, **overrides) as running:
        rebuilt = await _numbers(running, mint, day)
        assert rebuilt == live
        # New events after the rebuild are counted once, on top.
        more = build_world(day, declarations=20, seed=12).events
        await feed(running, more)
        await eventually(lambda: processed(running, more), timeout=90, what="new events projected")
        async with running.runtime("reporting").database.transaction(readonly=True) as session:
            city = (await session.execute(select(func.sum(declaration_hourly.c.declarations)).where(
                declaration_hourly.c.area == "79", declaration_hourly.c.result != "flagged"))).scalar_one()
        assert city == sum(world.declarations.values()) + 20
