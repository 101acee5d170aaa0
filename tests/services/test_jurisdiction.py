"""Every list endpoint and console page is filtered by the caller's jurisdiction, on the server.

The city sees everything; a district its own rows and its communes'; a commune only its
own; a unit administrator (and its gate staff) only its unit's venues, not even those of
another unit of the same commune. The data: the demo unit and three more units (two
communes of Cần Giờ, one of Quận 1), and four registrations, carried by real events.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import pytest_asyncio

from libs.common.auth import Role
from libs.common.settings import SERVICES

from .conftest import (
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    OTHER_COMMUNE,
    OTHER_DISTRICT,
    OTHER_DISTRICT_COMMUNE,
    Minter,
    demo_system,
    eventually,
    registration,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
HTML = {"accept": "text/html"}


@dataclass
class World:
    system: object
    minter: Minter
    venues: dict[str, set[str]]          # unit key -> venue codes
    unit_ids: dict[str, str]
    refs: dict[str, str]                 # registration key -> reference
    recipients: dict[str, str]           # registration key -> notice recipient path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory):
    from services.provisioning.models import Venue
    from services.provisioning.service import create_unit_with_venues
    from sqlalchemy import select

    async with demo_system(tmp_path_factory.mktemp("jurisdiction") / "data") as system:
        runtime = system.runtime("provisioning")
        unit_ids, venues = {}, {}
        async with runtime.database.transaction(readonly=True) as session:
            demo_venues = list((await session.execute(select(Venue))).scalars())
        unit_ids["A"] = str(demo_venues[0].unit_id)
        venues["A"] = {v.code for v in demo_venues}
        for key, name, commune, gates in (
                ("B", "Trường THCS Cần Thạnh", DEMO_COMMUNE, ["Cổng trường"]),
                ("C", "Chợ Bình Khánh", OTHER_COMMUNE, ["Cổng chợ"]),
                ("D", "Công ty TNHH Bến Nghé", OTHER_DISTRICT_COMMUNE, ["Sảnh chính"])):
            async with runtime.database.transaction() as session:
                unit, created = await create_unit_with_venues(
                    session, runtime.tree, name=name, address="1 Đường Số 1", commune_path=commune,
                    venue_names=gates)
            unit_ids[key] = str(unit.id)
            venues[key] = {v.code for v in created}

        refs, recipients = {}, {}
        for key, code, unit_type, name, recipient in (
                ("school", "27664", "school", "Trường Tiểu học Cần Thạnh", DEMO_COMMUNE),
                ("agency", "27664", "state_agency", "Phòng Y tế huyện Cần Giờ", DEMO_DISTRICT),
                ("market", "27667", "market", "Chợ Bình Khánh", OTHER_COMMUNE),
                ("company", "26740", "company", "Công ty TNHH Bến Nghé", OTHER_DISTRICT_COMMUNE)):
            response = await system["intake"].post("/api/registrations", json=registration(code, unit_type, name))
            assert response.status_code == 201, response.text
            refs[key] = response.json()["reference"]
            recipients[key] = recipient

        minter = system.extra["minter"]
        city = minter.headers(Role.CITY_DIC, CITY)

        async def settled():
            counts = await system["reporting"].get("/api/registrations/counts", headers=city)
            notices = await system["notification"].get("/api/notices", headers=city)
            page = await system["declaration"].get("/", headers={**HTML, **city})
            all_codes = set().union(*venues.values())
            return (sum(r["registrations"] for r in counts.json()) == 4 and len(notices.json()) == 4
                    and all(code in page.text for code in all_codes))

        await eventually(settled, timeout=60, what="events of the fixture handled")
        yield World(system, minter, venues, unit_ids, refs, recipients)


# Who sees what: (role, jurisdiction, unit) -> registrations, venues (by unit) and notices.
PRINCIPALS = {
    "city": (Role.CITY_DIC, CITY, None),
    "district": (Role.DISTRICT_FOCAL, DEMO_DISTRICT, None),
    "health": (Role.HEALTH_OFFICER, DEMO_DISTRICT, None),
    "other_district": (Role.DISTRICT_FOCAL, OTHER_DISTRICT, None),
    "commune": (Role.COMMUNE_FOCAL, DEMO_COMMUNE, None),
    "other_commune": (Role.COMMUNE_FOCAL, OTHER_COMMUNE, None),
    "unit_a": (Role.UNIT_ADMIN, DEMO_COMMUNE, "A"),
    "unit_b": (Role.UNIT_ADMIN, DEMO_COMMUNE, "B"),
    "gate_a": (Role.GATE_STAFF, DEMO_COMMUNE, "A"),
}
REGISTRATIONS = {
    "city": {"school", "agency", "market", "company"},
    "district": {"school", "agency", "market"},
    "health": {"school", "agency", "market"},
    "other_district": {"company"},
    "commune": {"school", "agency"},   # both units are located in the commune
    "other_commune": {"market"},
}
VENUES = {
    "city": {"A", "B", "C", "D"},
    "district": {"A", "B", "C"},
    "health": {"A", "B", "C"},
    "other_district": {"D"},
    "commune": {"A", "B"},
    "other_commune": {"C"},
    "unit_a": {"A"},
    "unit_b": {"B"},
    "gate_a": {"A"},
}
NOTICES = {  # the agency's notice is addressed to the district, not to the commune
    "city": {"school", "agency", "market", "company"},
    "district": {"school", "agency", "market"},
    "health": {"school", "agency", "market"},
    "other_district": {"company"},
    "commune": {"school"},
    "other_commune": {"market"},
}


def _headers(world: World, who: str, html: bool = False) -> dict[str, str]:
    role, jurisdiction, unit = PRINCIPALS[who]
    headers = world.minter.headers(role, jurisdiction, unit_id=world.unit_ids[unit] if unit else None)
    return {**HTML, **headers} if html else headers


def _codes(world: World, units: set[str]) -> set[str]:
    return set().union(*(world.venues[u] for u in units)) if units else set()


def _all_codes(world: World) -> set[str]:
    return _codes(world, set(world.venues))


def _seen(text: str, candidates: set[str]) -> set[str]:
    return {c for c in candidates if c in text}


@pytest.mark.parametrize("who", sorted(REGISTRATIONS))
async def test_intake_registrations(world, who):
    response = await world.system["intake"].get("/api/registrations", headers=_headers(world, who))
    assert response.status_code == 200
    expected = {world.refs[k] for k in REGISTRATIONS[who]}
    assert {r["reference"] for r in response.json()} == expected
    page = await world.system["intake"].get("/", headers=_headers(world, who, html=True))
    assert page.status_code == 200
    assert _seen(page.text, set(world.refs.values())) == expected


@pytest.mark.parametrize("who", sorted(VENUES))
async def test_provisioning_venues(world, who):
    response = await world.system["provisioning"].get("/api/venues", headers=_headers(world, who))
    assert response.status_code == 200
    expected = _codes(world, VENUES[who])
    assert {v["code"] for v in response.json()} == expected
    page = await world.system["provisioning"].get("/", headers=_headers(world, who, html=True))
    assert page.status_code == 200
    assert _seen(page.text, _all_codes(world)) == expected


@pytest.mark.parametrize("who", sorted(VENUES))
async def test_declaration_console_venues(world, who):
    page = await world.system["declaration"].get("/", headers=_headers(world, who, html=True))
    assert page.status_code == 200
    assert _seen(page.text, _all_codes(world)) == _codes(world, VENUES[who])


@pytest.mark.parametrize("who", sorted(NOTICES))
async def test_notification_inbox(world, who):
    response = await world.system["notification"].get("/api/notices", headers=_headers(world, who))
    assert response.status_code == 200
    expected = {world.refs[k] for k in NOTICES[who]}
    assert {n["reference"] for n in response.json()} == expected
    _, jurisdiction, _ = PRINCIPALS[who]
    assert all(n["recipient_path"] == jurisdiction or n["recipient_path"].startswith(jurisdiction + "/")
               for n in response.json())
    page = await world.system["notification"].get("/", headers=_headers(world, who, html=True))
    assert page.status_code == 200
    assert _seen(page.text, set(world.refs.values())) == expected


@pytest.mark.parametrize("who", sorted(REGISTRATIONS))
async def test_reporting_counts(world, who):
    response = await world.system["reporting"].get("/api/registrations/counts", headers=_headers(world, who))
    assert response.status_code == 200
    rows = response.json()
    _, jurisdiction, _ = PRINCIPALS[who]
    assert rows, who
    assert all(r["path"] == jurisdiction or r["path"].startswith(jurisdiction + "/") for r in rows)
    assert sum(r["registrations"] for r in rows) == len(REGISTRATIONS[who])
    page = await world.system["reporting"].get("/", headers=_headers(world, who, html=True))
    assert page.status_code == 200
    assert re.search(r'id="total">(\d+)<', page.text).group(1) == str(len(REGISTRATIONS[who]))
    paths = set(re.findall(r'data-path="([^"]+)"', page.text))
    assert paths == {r["path"] for r in rows}


@pytest.mark.parametrize("who", ["unit_a", "gate_a"])
@pytest.mark.parametrize("service,path", [("intake", "/api/registrations"), ("notification", "/api/notices"),
                                          ("reporting", "/api/registrations/counts")])
async def test_unit_roles_see_no_official_lists(world, who, service, path):
    response = await world.system[service].get(path, headers=_headers(world, who))
    assert response.status_code == 403
    page = await world.system[service].get("/", headers=_headers(world, who, html=True))
    if service == "notification":  # sent to the alerts of its own venues, no list of officials'
        assert page.status_code == 303 and page.headers["location"] == "/alerts/unit"
    else:
        assert page.status_code == 403
    assert not _seen(page.text, set(world.refs.values()))


@pytest.mark.parametrize("jurisdiction", ["01", "79/9999", "7", "79/78", "79%", "79/_87", ""])
async def test_unknown_or_tricky_jurisdictions_see_nothing(world, jurisdiction):
    """A path outside the tree, a prefix that is not a node boundary, SQL wildcards."""
    headers = world.minter.headers(Role.CITY_DIC, jurisdiction)
    for service, path, key in (("intake", "/api/registrations", "reference"),
                               ("provisioning", "/api/venues", "code"),
                               ("notification", "/api/notices", "reference")):
        response = await world.system[service].get(path, headers=headers)
        assert response.status_code in (200, 401), (service, response.status_code)
        if response.status_code == 200:
            assert response.json() == [], (service, jurisdiction)
    counts = await world.system["reporting"].get("/api/registrations/counts", headers=headers)
    assert counts.status_code in (200, 401)
    if counts.status_code == 200:
        assert sum(r["registrations"] for r in counts.json()) == 0
    for service in SERVICES:
        page = await world.system[service].get("/", headers={**HTML, **headers})
        assert page.status_code in (200, 303), (service, page.status_code)
        assert not _seen(page.text, set(world.refs.values()) | _all_codes(world)), service
