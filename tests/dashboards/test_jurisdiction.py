"""Each official sees only their own area: the district its communes, the commune itself;
asking for another area is refused with a Vietnamese message (page and API)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from libs.common.auth import Role
from services.reporting.service import today

from .conftest import eventually, feed, processed, reporting_on
from .world import BEN_NGHE, BINH_KHANH, CAN_GIO, CAN_THANH, QUAN_1, build_world

HTML = {"accept": "text/html"}


@pytest.fixture
async def running(tmp_path, keys):
    from tests.conftest import Backend

    backend = Backend("embedded", tmp_path, f"embedded://{tmp_path / 'bus.db'}", "t.")
    world = build_world(today(), declarations=60)
    async with reporting_on(backend, keys) as running:
        await feed(running, world.events)
        await eventually(lambda: processed(running, world.events), timeout=60, what="events projected")
        running.extra["world"] = world
        yield running


def _paths(html: str) -> set[str]:
    return set(re.findall(r'data-path="([^"]+)"', html))


async def test_district_sees_its_communes_only(running, mint):
    client = running["reporting"]
    page = await client.get("/", headers={**HTML, **mint.headers(Role.DISTRICT_FOCAL, CAN_GIO)})
    assert page.status_code == 200, page.text[:500]
    assert _paths(page.text) >= {CAN_THANH, BINH_KHANH} and all(p.startswith(CAN_GIO + "/") for p in _paths(page.text))
    assert "Phường Bến Nghé" not in page.text
    assert "<svg" in page.text and 'style="' not in page.text and "<script" not in page.text
    world = running.extra["world"]
    assert re.search(r'id="kpi-declarations">(\d+)<', page.text).group(1) == str(
        world.declarations[CAN_THANH] + world.declarations[BINH_KHANH])
    # Drill down to one of its communes.
    one = await client.get("/", params={"area": CAN_THANH}, headers={**HTML, **mint.headers(Role.DISTRICT_FOCAL, CAN_GIO)})
    assert one.status_code == 200 and _paths(one.text) == {CAN_THANH}


async def test_commune_sees_itself_only(running, mint):
    page = await running["reporting"].get("/", headers={**HTML, **mint.headers(Role.COMMUNE_FOCAL, CAN_THANH)})
    assert page.status_code == 200
    assert _paths(page.text) == {CAN_THANH}
    assert "Thị trấn Cần Thạnh" in page.text and "Xã Bình Khánh" not in page.text


@pytest.mark.parametrize("role,own,other", [(Role.DISTRICT_FOCAL, CAN_GIO, QUAN_1),
                                            (Role.DISTRICT_FOCAL, CAN_GIO, BEN_NGHE),
                                            (Role.COMMUNE_FOCAL, CAN_THANH, BINH_KHANH),
                                            (Role.COMMUNE_FOCAL, CAN_THANH, CAN_GIO)])
async def test_other_area_is_refused(running, mint, role, own, other):
    client = running["reporting"]
    api = await client.get("/api/dashboard", params={"area": other}, headers=mint.headers(role, own))
    assert api.status_code == 403
    assert "ngoài phạm vi quản lý" in api.json()["detail"]
    page = await client.get("/", params={"area": other}, headers={**HTML, **mint.headers(role, own)})
    assert page.status_code == 403
    assert "ngoài phạm vi quản lý" in page.text


async def test_bad_dates_are_explained(running, mint):
    client = running["reporting"]
    api = await client.get("/api/dashboard", params={"start": "20/06/2021"}, headers=mint.headers(Role.CITY_DIC, "79"))
    assert api.status_code == 400 and "năm-tháng-ngày" in api.json()["detail"]
    api = await client.get("/api/dashboard", params={"start": "2021-06-20", "end": "2021-06-01"},
                           headers=mint.headers(Role.CITY_DIC, "79"))
    assert api.status_code == 400 and "Ngày bắt đầu" in api.json()["detail"]
    page = await client.get("/", params={"start": "hôm qua"}, headers={**HTML, **mint.headers(Role.CITY_DIC, "79")})
    assert page.status_code == 200 and "năm-tháng-ngày" in page.text


async def test_unit_roles(running, mint):
    client = running["reporting"]
    world = running.extra["world"]
    unit = next(u for u in world.units if u.venues)
    page = await client.get("/unit", headers={**HTML, **mint.headers(Role.UNIT_ADMIN, unit.commune,
                                                                     unit_id=str(unit.unit_id))})
    assert page.status_code == 200
    assert any(name in page.text for venue_id, _, name in unit.venues if world.per_venue[venue_id])
    others = [name for u in world.units if u is not unit for _, _, name in u.venues]
    assert not any(name in page.text for name in others)
    gate = await client.get("/unit", headers={**HTML, **mint.headers(Role.GATE_STAFF, unit.commune)})
    assert gate.status_code == 403
