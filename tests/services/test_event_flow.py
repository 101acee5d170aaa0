"""Events crossing services, on both backends (SQLite + embedded bus, PostgreSQL + Kafka).

intake POST /api/registrations -> outbox -> bus -> reporting counts and notification inbox;
provisioning demo venues -> provisioning.venue.created -> declaration's venue copy.
Every wait polls with a deadline; there is no fixed sleep.
"""
from __future__ import annotations

import pytest

from libs.common.auth import Role
from libs.common.settings import SERVICES

from .conftest import (
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    OTHER_COMMUNE,
    OTHER_DISTRICT,
    OTHER_DISTRICT_COMMUNE,
    build_settings,
    eventually,
    registration,
    run_services,
)

DEADLINE = 60.0


@pytest.fixture
async def flow_system(backend, keys):
    settings = {}
    for service in SERVICES:
        settings[service] = build_settings(
            service, keys, database_url=await backend.database_url(service), bus_url=backend.bus_url,
            bus_namespace=backend.bus_options().get("namespace", ""), kafka_partitions=2,
            demo=service == "provisioning")
    async with run_services(settings) as system:
        yield system


async def _counts(system, mint, role: Role, jurisdiction: str) -> dict[str, int]:
    response = await system["reporting"].get("/api/registrations/counts", headers=mint.headers(role, jurisdiction))
    assert response.status_code == 200, response.text
    return {row["path"]: row["registrations"] for row in response.json()}


async def _inbox(system, mint, role: Role, jurisdiction: str) -> dict[str, str]:
    response = await system["notification"].get("/api/notices", headers=mint.headers(role, jurisdiction))
    assert response.status_code == 200, response.text
    return {row["reference"]: row["recipient_path"] for row in response.json()}


async def test_registration_reaches_reporting_and_the_right_inbox(flow_system, mint):
    system = flow_system
    intake = system["intake"]
    school = await intake.post("/api/registrations", json=registration("27664", "school"))
    agency = await intake.post("/api/registrations", json=registration(
        "27664", "state_agency", name="Phòng Tài nguyên và Môi trường huyện Cần Giờ"))
    elsewhere = await intake.post("/api/registrations", json=registration(
        "26740", "company", name="Công ty TNHH Bến Nghé"))
    for response in (school, agency, elsewhere):
        assert response.status_code == 201, response.text
    school, agency, elsewhere = school.json(), agency.json(), elsewhere.json()
    assert (school["receiver"], agency["receiver"]) == ("commune", "district")

    # Reporting: the commune's count, its district's row for it, the city's row for the district.
    async def counted():
        city = await _counts(system, mint, Role.CITY_DIC, CITY)
        return city if city.get(DEMO_DISTRICT) == 2 and city.get(OTHER_DISTRICT) == 1 else None

    await eventually(counted, timeout=DEADLINE, what="registrations counted by reporting")
    assert await _counts(system, mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE) == {DEMO_COMMUNE: 2}
    district = await _counts(system, mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    assert district[DEMO_COMMUNE] == 2 and district[OTHER_COMMUNE] == 0
    assert sum(district.values()) == 2
    assert sum((await _counts(system, mint, Role.DISTRICT_FOCAL, OTHER_DISTRICT)).values()) == 1
    assert (await _counts(system, mint, Role.HEALTH_OFFICER, DEMO_DISTRICT))[DEMO_COMMUNE] == 2

    # Notification: the school goes to the commune, the state agency to the district.
    async def delivered():
        inbox = await _inbox(system, mint, Role.CITY_DIC, CITY)
        return inbox if {school["reference"], agency["reference"], elsewhere["reference"]} <= set(inbox) else None

    city_inbox = await eventually(delivered, timeout=DEADLINE, what="notices delivered")
    assert city_inbox[school["reference"]] == DEMO_COMMUNE
    assert city_inbox[agency["reference"]] == DEMO_DISTRICT
    assert city_inbox[elsewhere["reference"]] == OTHER_DISTRICT_COMMUNE

    commune_inbox = await _inbox(system, mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    assert set(commune_inbox) == {school["reference"]}
    district_inbox = await _inbox(system, mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    assert set(district_inbox) == {school["reference"], agency["reference"]}
    assert district_inbox[agency["reference"]] == DEMO_DISTRICT
    # Nobody else: the neighbouring commune, another district and that district's commune.
    assert await _inbox(system, mint, Role.COMMUNE_FOCAL, OTHER_COMMUNE) == {}
    assert set(await _inbox(system, mint, Role.DISTRICT_FOCAL, OTHER_DISTRICT)) == {elsewhere["reference"]}
    assert set(await _inbox(system, mint, Role.COMMUNE_FOCAL, OTHER_DISTRICT_COMMUNE)) == {elsewhere["reference"]}

    # Delivered once: the counts do not grow while the consumers keep polling.
    notices = await system["notification"].get("/api/notices", headers=mint.headers(Role.CITY_DIC, CITY))
    assert len(notices.json()) == 3


async def test_demo_venues_reach_the_declaration_service(flow_system, mint):
    system = flow_system
    response = await system["provisioning"].get("/api/venues", headers=mint.headers(Role.CITY_DIC, CITY))
    assert response.status_code == 200
    venues = response.json()
    assert len(venues) == 2 and {v["commune_path"] for v in venues} == {DEMO_COMMUNE}

    for venue in venues:
        async def copied(code=venue["code"]):
            found = await system["declaration"].get(f"/api/venues/{code}")
            assert found.status_code in (200, 404), found.text
            return found.json() if found.status_code == 200 else None

        public = await eventually(copied, timeout=DEADLINE, what=f"venue {venue['code']} in declaration")
        assert public == {"code": venue["code"], "name": venue["name"], "unit_name": "Chợ Cần Thạnh",
                          "address": venue["address"], "active": True}
        # the code as typed from a poster, in lower case
        assert (await system["declaration"].get(f"/api/venues/{venue['code'].lower()}")).status_code == 200

    assert (await system["declaration"].get("/api/venues/NOSUCHCODE")).status_code == 404
