"""From the bus to the exposure query, on both backends (SQLite + the embedded bus, and
PostgreSQL + Kafka): provisioning's venue events (out of order) and declarations
published through an outbox reach reporting's consumer; a redelivered declaration — the
same event again, or a new event of the same declaration — makes one visit."""
from __future__ import annotations

import contextlib
from datetime import timedelta

from sqlalchemy import func, select

from libs.common.auth import Role
from libs.common.outbox import processed_events, publish
from services.reporting import visits
from services.reporting.exposure import local_input

from .conftest import DEMO_DISTRICT, T0, build_settings, eventually, run_services, submitted, venue_created, venue_updated


@contextlib.asynccontextmanager
async def reporting_on(backend, keys):  # noqa: ANN001, ANN202
    settings = build_settings("reporting", keys, database_url=await backend.database_url("reporting"),
                              bus_url=backend.bus_url,
                              bus_namespace=backend.namespace if backend.name == "kafka" else "")
    async with run_services({"reporting": settings}) as running:
        yield running


async def test_declarations_from_the_bus_answer_the_exposure_query(backend, keys, mint):
    async with reporting_on(backend, keys) as running:
        database = running.runtime("reporting").database
        created = venue_created(code="MARKET2345", name="Tên cũ")
        renamed = venue_updated(created, at=T0 + timedelta(hours=1), name="Cổng chợ")
        declared = [submitted(created, at=T0 + timedelta(minutes=m), name=f"Người {m}") for m in range(5)]
        again = declared[0].model_copy(update={"id": declared[0].id.__class__(int=declared[0].id.int + 1)})
        events = [renamed, created, *declared, declared[1], again]
        async with database.transaction() as session:
            await publish(session, *events)

        async def handled():  # noqa: ANN202
            async with database.transaction(readonly=True) as session:
                done = (await session.execute(select(func.count()).select_from(processed_events).where(
                    processed_events.c.event_id.in_({str(e.id) for e in events})))).scalar_one()
            return done == len({e.id for e in events})
        await eventually(handled, timeout=60, what="reporting consumed the events")

        async with database.transaction(readonly=True) as session:
            assert (await session.execute(select(func.count()).select_from(visits.visits))).scalar_one() == 5
        response = await running["reporting"].post(
            "/api/exposure", headers=mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT),
            json={"venue": "MARKET2345", "case_reference": "CG-2021-0153", "reason": "Ca dương tính đã đến chợ",
                  "start": local_input(T0 - timedelta(minutes=5)), "end": local_input(T0 + timedelta(hours=1))})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == 5 and body["venue"]["name"] == "Cổng chợ"
        assert [c["full_name"] for c in body["contacts"]] == [f"Người {m}" for m in range(5)]
