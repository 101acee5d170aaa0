"""The exposure query through the real reporting app (HTTP via ASGI, SQLite, the embedded
bus): refused without a case reference or a reason (nothing run, the refusal logged), another
jurisdiction's venue refused and logged, every query and export in the access log, the
.xlsx neutralised, the city reads the log and a district only its own."""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook

from libs.common.auth import SESSION_COOKIE, Role
from libs.common.db import Database
from services.reporting import directory, visits
from services.reporting.exposure import LOCAL_TZ, local_input

from .conftest import (
    CITY, DEMO_COMMUNE, DEMO_DISTRICT, OTHER_COMMUNE, OTHER_DISTRICT, OTHER_DISTRICT_COMMUNE, T0, apply,
    build_settings, run_services, submitted, venue_created,
)

HANDLERS = {**directory.HANDLERS, **visits.HANDLERS}
HTML = {"accept": "text/html"}


@pytest.fixture
async def reporting(keys):
    async with run_services({"reporting": build_settings("reporting", keys)}) as running:
        yield running


@pytest.fixture
async def seeded(reporting):
    """Two venues in the demo district (two communes), one in District 1; declarations at them."""
    database: Database = reporting.runtime("reporting").database
    market = venue_created(code="MARKET2345", name="Cổng chợ", unit_name="Chợ Cần Thạnh")
    school = venue_created(code="SCHL234567", name="Cổng trường", unit_name="Trường Bình Khánh",
                           commune=OTHER_COMMUNE)
    far = venue_created(code="FARAWAY234", name="Cổng tòa nhà", unit_name="Tòa nhà Bến Nghé",
                        commune=OTHER_DISTRICT_COMMUNE)
    case = submitted(market, at=T0, name="Trần Thị Bệnh", result="red")
    inside = [submitted(market, at=T0 + timedelta(minutes=m), name=f"Người {m}", phone=f"09000000{m:02d}")
              for m in (10, 20, 30)]
    attack = submitted(market, at=T0 + timedelta(minutes=40), name="=HYPERLINK(\"http://x\",\"bấm\")",
                       phone="+84909123456")
    late = submitted(market, at=T0 + timedelta(hours=5), name="Người đến muộn")
    elsewhere = [submitted(school, at=T0 + timedelta(minutes=5)), submitted(far, at=T0 + timedelta(minutes=5))]
    await apply(database, HANDLERS, market, school, far, case, *inside, attack, late, *elsewhere)
    return {"market": market, "school": school, "far": far, "case": case, "db": database}


def cookie(mint, role, path) -> dict:  # noqa: ANN001
    return {**HTML, "cookie": f"{SESSION_COOKIE}={mint.token(role, path)}"}


async def csrf(client, headers) -> str:  # noqa: ANN001
    page = await client.get("/exposure", headers=headers)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
    assert found, "the form carries its CSRF field"
    return found.group(1)


def window(**extra) -> dict:  # noqa: ANN003
    return {"start": local_input(T0 - timedelta(minutes=30)), "end": local_input(T0 + timedelta(hours=1)), **extra}


async def log_entries(client, mint, path=CITY) -> list[dict]:  # noqa: ANN001
    response = await client.get("/api/access-log", headers=mint.headers(Role.CITY_DIC, path))
    assert response.status_code == 200
    return response.json()


async def test_refused_without_case_reference_or_reason(reporting, seeded, mint):
    client = reporting["reporting"]
    headers = cookie(mint, Role.HEALTH_OFFICER, DEMO_DISTRICT)
    token = await csrf(client, headers)
    venue = str(seeded["market"].data.venue_id)
    page = await client.post("/exposure", headers=headers,
                             data={"csrf_token": token, "venue": venue, "reason": "", "case_reference": "", **window()})
    assert page.status_code == 422
    assert "Nhập số hồ sơ ca bệnh" in page.text and "Nhập lý do tra cứu" in page.text
    assert "Người 10" not in page.text
    api = await client.post("/api/exposure", headers=mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT),
                            json={"venue": venue, "reason": "Ca xác nhận đã đến chợ", **window()})
    assert api.status_code == 422 and "case_reference" in {e["field"] for e in api.json()["errors"]}
    export = await client.post("/exposure/export", headers=headers,
                               data={"csrf_token": token, "venue": venue, "case_reference": "CG-1", **window()})
    assert export.status_code == 422 and "spreadsheet" not in export.headers["content-type"]
    # Nothing was read, yet each refusal is in the access log (issue 17).
    entries = await log_entries(client, mint)
    assert sorted((e["action"], e["outcome"], e["detail"], e["row_count"]) for e in entries) == [
        ("exposure.export", "refused", "no_reason", 0), ("exposure.query", "refused", "no_case_reference", 0),
        ("exposure.query", "refused", "no_case_reference", 0)]


async def test_query_export_and_access_log(reporting, seeded, mint):
    client = reporting["reporting"]
    headers = cookie(mint, Role.HEALTH_OFFICER, DEMO_DISTRICT)
    token = await csrf(client, headers)
    form = {"csrf_token": token, "venue_code": "market-2345", "case_reference": "CG-2021-0153",
            "reason": "Ca dương tính đã đến chợ sáng 20/6", **window()}
    page = await client.post("/exposure", headers=headers, data=form)
    assert page.status_code == 200, page.text
    assert 'id="contact-count">5<' in page.text
    assert "Trần Thị Bệnh" in page.text and "0900000010" in page.text and "Người đến muộn" not in page.text
    assert "Trường Bình Khánh" in page.text  # the school is in the list of venues (same district)...
    assert "Tòa nhà Bến Nghé" not in page.text  # ...District 1's building is not

    before = datetime.now(LOCAL_TZ).replace(second=0, microsecond=0)
    export = await client.post("/exposure/export", headers=headers, data=form)
    assert export.status_code == 200
    # The file is named with the time in the city, as the sheet states it.
    stamp = re.search(r'filename="truy-vet-tiep-xuc-(\d{8}-\d{4})\.xlsx"', export.headers["content-disposition"])
    named = datetime.strptime(stamp.group(1), "%Y%m%d-%H%M").replace(tzinfo=LOCAL_TZ)
    assert before <= named <= datetime.now(LOCAL_TZ), named
    assert export.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert export.headers["cache-control"] == "no-store"
    sheet = load_workbook(io.BytesIO(export.content)).active
    cells = [c.value for row in sheet.iter_rows() for c in row if c.value is not None]
    assert "CG-2021-0153" in cells and "Trần Thị Bệnh" in cells
    assert "'=HYPERLINK(\"http://x\",\"bấm\")" in cells and "'+84909123456" in cells
    assert not any(isinstance(v, str) and v.startswith(("=", "+", "-", "@")) for v in cells)

    # by declaration: the case's venue, two hours either side (the late visitor is 5 h later)
    api = await client.post("/api/exposure", headers=mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT), json={
        "declaration_id": str(seeded["case"].data.declaration_id), "case_reference": "CG-2021-0153",
        "reason": "Truy vết theo tờ khai của ca bệnh"})
    assert api.status_code == 200, api.text
    body = api.json()
    assert body["total"] == 5 and sum(c["is_index"] for c in body["contacts"]) == 1

    entries = await log_entries(client, mint)
    assert [(e["action"], e["outcome"], e["row_count"]) for e in entries] == [
        ("exposure.query", "ok", 5), ("exposure.export", "ok", 5), ("exposure.query", "ok", 5)]
    assert {e["case_reference"] for e in entries} == {"CG-2021-0153"}
    assert all(e["actor_role"] == "health_officer" and e["scope_path"] == DEMO_COMMUNE for e in entries)
    # the log holds no personal data of the people found
    text = str(entries)
    assert "Trần Thị Bệnh" not in text and "0900000010" not in text

    # the city reads the log page; District 1 does not see the demo district's entries
    city = await client.get("/access-log", headers=cookie(mint, Role.CITY_DIC, CITY))
    assert city.status_code == 200 and 'id="entry-count">3<' in city.text and "CG-2021-0153" in city.text
    other = await client.get("/access-log", headers=cookie(mint, Role.DISTRICT_FOCAL, OTHER_DISTRICT))
    assert other.status_code == 200 and 'id="entry-count">0<' in other.text
    own = await client.get("/api/access-log", headers=mint.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT))
    assert len(own.json()) == 3


async def test_other_jurisdiction_refused_and_logged(reporting, seeded, mint):
    client = reporting["reporting"]
    # a commune focal point sees only its commune: the school (next commune) is refused
    headers = cookie(mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    token = await csrf(client, headers)
    page = await client.post("/exposure", headers=headers, data={
        "csrf_token": token, "venue": str(seeded["school"].data.venue_id), "case_reference": "CG-9",
        "reason": "Thử tra cứu địa điểm xã khác", **window()})
    assert page.status_code == 404 and "Không tìm thấy địa điểm" in page.text
    # District 1's officer asks for the demo market by code, and for the case's declaration
    api_headers = mint.headers(Role.HEALTH_OFFICER, OTHER_DISTRICT)
    for body in ({"venue": "MARKET2345", **window()}, {"declaration_id": str(seeded["case"].data.declaration_id)}):
        response = await client.post("/api/exposure", headers=api_headers,
                                     json={"case_reference": "Q1-7", "reason": "Tra cứu ngoài địa bàn", **body})
        assert response.status_code == 404
        assert "Trần Thị Bệnh" not in response.text
    # an unknown code is refused the same way, and logged as unknown
    unknown = await client.post("/api/exposure", headers=api_headers, json={
        "venue": "ZZZZZZZZZZ", "case_reference": "Q1-7", "reason": "Tra cứu ngoài địa bàn", **window()})
    assert unknown.status_code == 404
    entries = await log_entries(client, mint)
    assert sorted((e["actor_jurisdiction"], e["outcome"], e["detail"]) for e in entries) == [
        (OTHER_DISTRICT, "refused", "outside_jurisdiction"), (OTHER_DISTRICT, "refused", "outside_jurisdiction"),
        (OTHER_DISTRICT, "refused", "unknown_venue"), (DEMO_COMMUNE, "refused", "outside_jurisdiction")]
    # roles that do not trace contacts are refused outright, and logged
    for role in (Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.UNIT_ADMIN):
        response = await client.post("/api/exposure", headers=mint.headers(role, DEMO_DISTRICT), json={})
        assert response.status_code == 403, role
    refused = [e for e in await log_entries(client, mint) if e["detail"] == "role_not_permitted"]
    assert sorted(e["actor_role"] for e in refused) == ["city_dic", "district_focal", "unit_admin"]


@pytest.mark.parametrize("bad, field", [
    ({"start": "", "end": ""}, "start"),
    ({"start": local_input(T0), "end": local_input(T0 - timedelta(hours=1))}, "end"),
    ({"start": local_input(T0), "end": local_input(T0 + timedelta(days=15))}, "end"),
    ({"start": "20/06/2021 tám giờ", "end": local_input(T0)}, "start"),
    ({"start": "2099-01-01T00:00", "end": "2099-01-02T00:00"}, "start"),
    ({"venue": "ABC"}, "venue"),
    ({"venue": "", "declaration_id": "không-phải-số"}, "declaration_id"),
])
async def test_bad_input_is_explained(reporting, seeded, mint, bad, field):
    client = reporting["reporting"]
    body = {"venue": "MARKET2345", "case_reference": "CG-1", "reason": "Ca dương tính đã đến chợ", **window(), **bad}
    response = await client.post("/api/exposure", headers=mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT), json=body)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_pages_in_english(reporting, seeded, mint):
    client = reporting["reporting"]
    headers = cookie(mint, Role.HEALTH_OFFICER, DEMO_DISTRICT)
    page = await client.get("/exposure?lang=en", headers=headers)
    assert page.status_code == 200 and "<h1" in page.text
    assert "Exposure query" in page.text and "Case reference" in page.text and "Tra cứu người tiếp xúc" not in page.text
    log = await client.get("/access-log?lang=en", headers=cookie(mint, Role.CITY_DIC, CITY))
    assert "Access log" in log.text and "Nhật ký truy cập" not in log.text
