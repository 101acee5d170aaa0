"""From a unit's registration to the city's list, on both backends (SQLite + embedded bus,
PostgreSQL + Kafka): review by the receiving focal point, the commune's list to the
district, the district's batch to the city. Every state change is an event: reporting
counts the funnel from them alone, and the forwarded batch carries every unit's details
and never an exempt, returned or duplicate one."""
from __future__ import annotations

import pytest

from libs.common.auth import Role
from libs.common.events import parse_event
from libs.common.events.envelope import topic_for

from .conftest import (
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    OTHER_COMMUNE,
    build_settings,
    headers,
    registration,
    run_services,
)
from tests.services.conftest import eventually

DEADLINE = 60.0


@pytest.fixture
async def flow(backend, keys):
    settings = {}
    for service in ("intake", "reporting"):
        settings[service] = build_settings(
            service, keys, database_url=await backend.database_url(service), bus_url=backend.bus_url,
            bus_namespace=backend.bus_options().get("namespace", ""), kafka_partitions=2, worker_poll_interval=0.05)
    async with run_services(settings) as system:
        yield system


async def _intake_events(system, types: set[str]) -> list:  # noqa: ANN001
    """Every intake event on the bus so far (a fresh consumer group reads from the start)."""
    bus = system.runtime("intake").bus
    consumer = bus.consumer("test-reader", [topic_for("intake.registration.submitted")])
    await consumer.start()
    found = []
    try:
        for _ in range(40):
            messages = await consumer.poll(max_records=500, timeout=0.5)
            found.extend(e for e in (parse_event(m.value) for m in messages) if e.type in types)
            if not messages and found:
                break
    finally:
        await consumer.stop()
    return found


async def test_registration_to_the_city(flow, mint):
    intake = flow["intake"]
    commune = headers(mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    district = headers(mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)

    async def register(code: str, kind: str, name: str) -> dict:
        response = await intake.post("/api/registrations", json=registration(code, kind, name))
        assert response.status_code == 201, response.text
        return response.json()

    school = await register("27664", "school", "Trường Tiểu học Cần Thạnh")
    market = await register("27664", "market", "Chợ Cần Thạnh")
    shop = await register("27664", "essential_shop", "Nhà thuốc Cần Thạnh")
    agency = await register("27664", "state_agency", "Phòng Giáo dục huyện Cần Giờ")
    await register("27667", "company", "Công ty TNHH Bình Khánh")

    async def act(auth: dict, item: dict, action: str, body: dict | None = None):  # noqa: ANN202
        return await intake.post(f"/api/registrations/{item['id']}/{action}", headers=auth, json=body)

    assert (await act(commune, school, "accept")).json()["status"] == "accepted"
    exempt = await act(commune, market, "exempt", {"reason": "health_center_qr", "note": "TTYT cấp mã 05/2021"})
    assert exempt.json()["exempt_reason"] == "health_center_qr"
    returned = await act(commune, shop, "return", {"reason": "Thiếu số nhà"})
    assert (returned.json()["status"], returned.json()["review_reason"]) == ("returned", "Thiếu số nhà")
    # The agency is the district's to review, not the commune's.
    refused = await act(commune, agency, "accept")
    assert refused.status_code == 403 and "Phòng Văn hóa và Thông tin" in refused.json()["detail"]
    # A returned registration stays returned; the unit registers again.
    assert (await act(commune, shop, "accept")).status_code == 409

    sent = await intake.post("/api/lists", headers=commune)
    assert sent.status_code == 201 and sent.json()["count"] == 1
    assert (await intake.post("/api/lists", headers=commune)).status_code == 409   # nothing left to send
    assert (await act(district, agency, "accept")).json()["status"] == "accepted"

    ready = (await intake.get("/api/forwardable", headers=district)).json()
    assert {r["reference"] for r in ready} == {school["reference"], agency["reference"]}
    # The exempt market can never be forwarded, even when asked for by name.
    asked = await intake.post("/api/batches", headers=district, json={"registration_ids": [market["id"]]})
    assert asked.status_code == 422 and market["reference"] in asked.json()["detail"]
    batch = await intake.post("/api/batches", headers=district, json={})
    assert batch.status_code == 201 and batch.json()["count"] == 2
    assert (await intake.get("/api/forwardable", headers=district)).json() == []
    members = (await intake.get(f"/api/batches/{batch.json()['id']}", headers=district)).json()
    assert {m["reference"] for m in members} == {school["reference"], agency["reference"]}

    # The unit sees where it stands.
    status = (await intake.get(school["status_url"].replace("http://intake.test", "").replace("/status/",
                                                                                              "/api/status/"))).json()
    assert status["stage"] == "forwarded" and "Sở Thông tin và Truyền thông" in status["message"]

    # Reporting counts the funnel from the events alone.
    from services.reporting.handlers import funnel_counts

    reporting = flow.runtime("reporting")

    async def counted():
        async with reporting.database.transaction(readonly=True) as session:
            counts = await funnel_counts(session, DEMO_DISTRICT)
        return counts if counts.get(DEMO_COMMUNE, {}).get("forwarded") == 2 and OTHER_COMMUNE in counts else None

    counts = await eventually(counted, timeout=DEADLINE, what="the funnel in reporting")
    assert counts[DEMO_COMMUNE] == {"submitted": 4, "accepted": 2, "returned": 1, "duplicate": 0, "exempt": 1,
                                    "sent": 1, "forwarded": 2, "late": 0}
    assert counts[OTHER_COMMUNE]["submitted"] == 1 and counts[OTHER_COMMUNE]["accepted"] == 0
    totals = (await flow["reporting"].get("/api/registrations/counts", headers=headers(mint, Role.CITY_DIC, CITY)))
    assert sum(r["registrations"] for r in totals.json()) == 5   # the old read model still counts

    events = await _intake_events(flow, {"intake.batch.forwarded", "intake.registration.exempted",
                                         "intake.list.sent", "intake.registration.returned"})
    forwarded = [e for e in events if e.type == "intake.batch.forwarded"]
    assert len(forwarded) == 1 and forwarded[0].data.parts == 1 and forwarded[0].data.total_units == 2
    units = {u.reference: u for u in forwarded[0].data.units}
    assert set(units) == {school["reference"], agency["reference"]}
    assert units[school["reference"]].contact_phone == "0909123456"
    assert units[school["reference"]].contact_email == "lienhe@example.vn"
    assert forwarded[0].jurisdiction == DEMO_DISTRICT
    assert {e.type for e in events} == {"intake.batch.forwarded", "intake.registration.exempted", "intake.list.sent",
                                         "intake.registration.returned"}


async def test_a_large_batch_travels_in_parts(flow, mint):
    """Kafka caps a message at 1 MB: 1,200 units go as three events of one batch."""
    from sqlalchemy import update

    from services.intake import lists
    from services.intake.models import Registration
    from services.intake.routing import UNIT_TYPES, commune_and_district
    from services.intake.service import register_units
    from services.intake.tests.conftest import DISTRICT
    from services.intake.validation import UnitDetails

    runtime = flow.runtime("intake")
    commune, district = commune_and_district(runtime.tree, DEMO_COMMUNE)
    units = [UnitDetails(unit_name=f"Cơ quan {i}", unit_type=UNIT_TYPES["state_agency"], address=f"{i} Đường A",
                         commune=commune, district=district, tax_code=None, contact_name="Nguyễn Văn An",
                         contact_position=None, contact_phone="0909123456", contact_email=None, venue_count=1)
             for i in range(1200)]
    async with runtime.database.transaction() as session:
        made = await register_units(session, units, deadline=None)
        await session.execute(update(Registration).where(Registration.id.in_([r.id for r in made]))
                              .values(status="accepted"))
    async with runtime.database.transaction() as session:
        batch = await lists.forward_batch(session, DISTRICT)
    assert (batch.count, batch.parts) == (1200, 3)
    events = await _intake_events(flow, {"intake.batch.forwarded"})
    parts = sorted((e.data.part, len(e.data.units), e.data.parts, e.data.total_units) for e in events)
    assert parts == [(1, 500, 3, 1200), (2, 500, 3, 1200), (3, 200, 3, 1200)]
    assert len({e.data.batch_id for e in events}) == 1
    assert max(len(e.to_bytes()) for e in events) < 1_000_000
