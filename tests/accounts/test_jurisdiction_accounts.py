"""Who sees what: a unit administrator sees its own unit only; officials their area only.

Three issued units: A and B in the same commune of Cần Giờ, C in Quận 1. Every page, file
and action of another unit answers 404 to a unit administrator (as if it did not exist),
and the Support Channel is the district's and the city's only.
"""
from __future__ import annotations

import io
import zipfile

import pytest

from libs.common.auth import Role

from .conftest import HTML, Accounts
from .support import DEMO_COMMUNE, DEMO_DISTRICT, OTHER_COMMUNE, OTHER_DISTRICT, OTHER_DISTRICT_COMMUNE, batch, unit


@pytest.fixture
async def world(accounts: Accounts):
    cangio = await accounts.batch_arrives(batch([
        unit("Trường Tiểu học A", DEMO_COMMUNE, gates=2), unit("Chợ B", DEMO_COMMUNE)], reference="LO-A-B"))
    quan1 = await accounts.batch_arrives(batch([unit("Công ty C", OTHER_DISTRICT_COMMUNE)], OTHER_DISTRICT,
                                               reference="LO-C"))
    await accounts.issue(cangio)
    await accounts.issue(quan1)
    city = accounts.headers(Role.CITY_DIC)
    units = {u["name"]: u for u in (await accounts.provisioning.get("/api/units", headers=city)).json()}
    details = {}
    for name, key in (("Trường Tiểu học A", "A"), ("Chợ B", "B"), ("Công ty C", "C")):
        details[key] = (await accounts.provisioning.get(f"/api/units/{units[name]['id']}", headers=city)).json()
    return accounts, details, {"cangio": cangio, "quan1": quan1}


def _unit_admin(accounts: Accounts, unit: dict, html: bool = False) -> dict:
    make = accounts.html if html else accounts.headers
    return make(Role.UNIT_ADMIN, unit["commune_path"], unit_id=unit["id"])


async def test_a_unit_administrator_sees_only_its_own_unit(world):
    accounts, units, _ = world
    a, b, c = units["A"], units["B"], units["C"]
    own = _unit_admin(accounts, a)
    own_html = _unit_admin(accounts, a, html=True)

    listed = (await accounts.provisioning.get("/api/units", headers=own)).json()
    assert [u["id"] for u in listed] == [a["id"]]
    venues = (await accounts.provisioning.get("/api/venues", headers=own)).json()
    assert {v["code"] for v in venues} == {v["code"] for v in a["venues"]}
    assert (await accounts.provisioning.get(f"/api/units/{a['id']}", headers=own)).status_code == 200
    page = await accounts.provisioning.get(f"/units/{a['id']}", headers=own_html)
    assert page.status_code == 200 and a["venues"][0]["code"] in page.text

    for other in (b, c):
        assert (await accounts.provisioning.get(f"/api/units/{other['id']}", headers=own)).status_code == 404
        for path in (f"/units/{other['id']}", f"/units/{other['id']}/posters.zip",
                     f"/venues/{other['venues'][0]['id']}", f"/venues/{other['venues'][0]['id']}/poster.pdf"):
            response = await accounts.provisioning.get(path, headers=own_html)
            assert response.status_code == 404, path
            assert other["name"] not in response.text and other["venues"][0]["code"] not in response.text
        for action in ("rename", "disable", "enable", "rotate"):
            response = await accounts.provisioning.post(f"/venues/{other['venues'][0]['id']}/{action}",
                                                        headers=own_html, data={"name": "Cổng giả", "confirm": "yes"})
            assert response.status_code == 404, action
        for action in ("reset", "disable"):
            response = await accounts.provisioning.post(f"/api/accounts/{other['accounts'][0]['id']}/{action}",
                                                        headers=own)
            assert response.status_code == 404, action
        staff = await accounts.provisioning.post(f"/api/units/{other['id']}/staff", headers=own,
                                                 json={"name": "Nhân viên lạ"})
        assert staff.status_code == 404
        home = await accounts.provisioning.get("/", headers=own_html)
        assert other["venues"][0]["code"] not in home.text and other["name"] not in home.text
    # Nothing of the city's: batches, jobs, other areas' posters.
    assert (await accounts.provisioning.get("/api/batches", headers=own)).status_code == 403
    assert (await accounts.provisioning.get("/batches", headers=own_html)).status_code == 403
    assert (await accounts.provisioning.get("/areas/27664/posters.zip", headers=own_html)).status_code == 403
    # A unit administrator cannot reset its own account into a password it would see.
    mine = await accounts.provisioning.post(f"/api/accounts/{a['accounts'][0]['id']}/reset",
                                            headers=_unit_admin(accounts, a))
    assert mine.status_code == 403


async def test_gate_staff_see_their_unit_but_change_nothing(world):
    accounts, units, _ = world
    a = units["A"]
    created = await accounts.provisioning.post(f"/api/units/{a['id']}/staff", headers=_unit_admin(accounts, a),
                                               json={"name": "Trần Văn Bảo"})
    assert created.status_code == 201
    gate = accounts.headers(Role.GATE_STAFF, a["commune_path"], unit_id=a["id"])
    venues = (await accounts.provisioning.get("/api/venues", headers=gate)).json()
    assert {v["code"] for v in venues} == {v["code"] for v in a["venues"]}
    detail = (await accounts.provisioning.get(f"/api/units/{a['id']}", headers=gate)).json()
    assert detail["accounts"] == []  # not the other accounts of its unit
    rename = await accounts.provisioning.post(f"/venues/{a['venues'][0]['id']}/rename",
                                              headers={**HTML, **gate}, data={"name": "Cổng mới"})
    assert rename.status_code == 403
    staff = await accounts.provisioning.post(f"/api/units/{a['id']}/staff", headers=gate, json={"name": "Ai đó"})
    assert staff.status_code == 403


async def test_officials_see_their_area_only(world):
    accounts, units, batches = world
    names = lambda rows: sorted(u["name"] for u in rows)  # noqa: E731
    for role, path, expected in (
            (Role.CITY_DIC, "79", ["Chợ B", "Công ty C", "Trường Tiểu học A"]),
            (Role.DISTRICT_FOCAL, DEMO_DISTRICT, ["Chợ B", "Trường Tiểu học A"]),
            (Role.COMMUNE_FOCAL, DEMO_COMMUNE, ["Chợ B", "Trường Tiểu học A"]),
            (Role.COMMUNE_FOCAL, OTHER_COMMUNE, []),
            (Role.DISTRICT_FOCAL, OTHER_DISTRICT, ["Công ty C"]),
            (Role.HEALTH_OFFICER, DEMO_DISTRICT, ["Chợ B", "Trường Tiểu học A"])):
        rows = (await accounts.provisioning.get("/api/units", headers=accounts.headers(role, path))).json()
        assert names(rows) == expected, (role, path)
    # Batches: the city all, a district its own.
    other = accounts.headers(Role.DISTRICT_FOCAL, OTHER_DISTRICT)
    assert [b["reference"] for b in (await accounts.provisioning.get("/api/batches", headers=other)).json()] == ["LO-C"]
    assert (await accounts.provisioning.get(f"/api/batches/{batches['cangio']}", headers=other)).status_code == 404
    assert (await accounts.provisioning.get(f"/batches/{batches['cangio']}",
                                            headers={**HTML, **other})).status_code == 404
    # Only the city issues; a district cannot.
    refused = await accounts.provisioning.post(f"/api/batches/{batches['quan1']}/issue", headers=other)
    assert refused.status_code == 403
    # A district resets its own units' administrators, not another district's.
    c_admin = units["C"]["accounts"][0]["id"]
    a_admin = units["A"]["accounts"][0]["id"]
    cangio = accounts.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    assert (await accounts.provisioning.post(f"/api/accounts/{c_admin}/disable", headers=cangio)).status_code == 404
    assert (await accounts.provisioning.post(f"/api/accounts/{a_admin}/disable", headers=cangio)).status_code == 200
    # A commune sees its units but cannot reset or disable their accounts.
    commune = accounts.headers(Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    assert (await accounts.provisioning.post(f"/api/accounts/{a_admin}/enable", headers=commune)).status_code == 403
    # The commune's posters: the ZIP of its area only.
    zipped = await accounts.provisioning.get("/areas/27664/posters.zip", headers={**HTML, **commune})
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    assert len(zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()) == 3  # A's two gates, B's one
    for elsewhere in ("26740", "760", "79"):  # another district's commune, another district, the city
        response = await accounts.provisioning.get(f"/areas/{elsewhere}/posters.zip", headers={**HTML, **commune})
        assert response.status_code == 404, elsewhere
    city_zip = await accounts.provisioning.get("/areas/787/posters.zip", headers=accounts.html(Role.CITY_DIC))
    assert len(zipfile.ZipFile(io.BytesIO(city_zip.content)).namelist()) == 3


async def test_the_support_channel_is_the_district_and_the_city_only(world):
    accounts, units, _ = world
    cangio = accounts.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    quan1 = accounts.headers(Role.DISTRICT_FOCAL, OTHER_DISTRICT)

    async def threads(headers):  # noqa: ANN001, ANN202
        response = await accounts.notification.get("/api/support/threads", headers=headers)
        return response.status_code, [t["district_path"] for t in response.json()] if response.status_code == 200 \
            else None

    assert await threads(cangio) == (200, [DEMO_DISTRICT])
    assert await threads(quan1) == (200, [OTHER_DISTRICT])
    status, paths = await threads(accounts.headers(Role.CITY_DIC))
    assert status == 200 and len(paths) == 22 and DEMO_DISTRICT in paths and OTHER_DISTRICT in paths
    for role, path in ((Role.COMMUNE_FOCAL, DEMO_COMMUNE), (Role.HEALTH_OFFICER, DEMO_DISTRICT)):
        assert (await threads(accounts.headers(role, path)))[0] == 403
    for who in (accounts.headers(Role.UNIT_ADMIN, DEMO_COMMUNE, unit_id=units["A"]["id"]),
                accounts.headers(Role.GATE_STAFF, DEMO_COMMUNE, unit_id=units["A"]["id"])):
        assert (await accounts.notification.get("/support/787", headers={**HTML, **who})).status_code == 403
    # Another district's thread and its credentials do not exist for Quận 1.
    assert (await accounts.notification.get("/support/787", headers={**HTML, **quan1})).status_code == 404
    assert (await accounts.notification.get("/api/support/threads/787/credentials", headers=quan1)).status_code == 404
    listed = (await accounts.notification.get("/api/support/threads/787/credentials", headers=cangio)).json()
    assert len(listed) == 2
    opened = await accounts.notification.post(f"/support/credentials/{listed[0]['id']}/open",
                                              headers={**HTML, **quan1}, data={"confirm": "yes"})
    assert opened.status_code == 404
    # The city follows them but never opens a password.
    city_html = accounts.html(Role.CITY_DIC)
    view = await accounts.notification.get(f"/support/credentials/{listed[0]['id']}", headers=city_html)
    assert view.status_code == 200 and "Mở và xem mật khẩu" not in view.text
    city_open = await accounts.notification.post(f"/support/credentials/{listed[0]['id']}/open", headers=city_html,
                                                 data={"confirm": "yes"})
    assert city_open.status_code == 403
