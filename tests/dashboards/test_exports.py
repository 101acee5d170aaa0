"""Exports of counts and registrations (CSV and .xlsx) for the caller's jurisdiction: the
contact person only for the roles that may see it, and such exports in the access log;
a cell that looks like a formula is neutralised."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from libs.common.auth import Role
from services.reporting.accesslog import access_log
from services.reporting.service import today

from .conftest import eventually, feed, processed, reporting_on
from .world import BEN_NGHE, CAN_GIO, CAN_THANH, build_world


@pytest.fixture
async def running(tmp_path, keys):
    from tests.conftest import Backend

    backend = Backend("embedded", tmp_path, f"embedded://{tmp_path / 'bus.db'}", "t.")
    world = build_world(today(), declarations=40)
    # A unit whose name a spreadsheet would run as a formula.
    first = world.events[0]
    world.events[0] = first.model_copy(update={"data": first.data.model_copy(
        update={"unit_name": '=HYPERLINK("http://evil.example","Bấm")'})})
    async with reporting_on(backend, keys) as running:
        await feed(running, world.events)
        await eventually(lambda: processed(running, world.events), timeout=60, what="events projected")
        running.extra["world"] = world
        yield running


def _csv(body: bytes) -> list[dict]:
    assert body.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def _log(running) -> list:  # noqa: ANN001
    async with running.runtime("reporting").database.transaction(readonly=True) as session:
        return (await session.execute(select(access_log.c.action, access_log.c.actor_role, access_log.c.scope_path,
                                             access_log.c.row_count))).all()


async def test_counts_per_commune(running, mint):
    world = running.extra["world"]
    day = world.day.isoformat()  # the fixture's day, even if local midnight has passed since
    response = await running["reporting"].get("/exports/counts.csv", params={"start": day, "end": day},
                                              headers=mint.headers(Role.DISTRICT_FOCAL, CAN_GIO))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = {r["Mã địa bàn"]: r for r in _csv(response.content)}
    assert BEN_NGHE not in rows and CAN_THANH in rows
    assert int(rows[CAN_THANH]["Lượt khai báo"]) == world.declarations[CAN_THANH]
    assert int(rows[CAN_THANH]["Đã hoạt động"]) == world.funnel[CAN_THANH]["live"]
    book = await running["reporting"].get("/exports/counts.xlsx", params={"start": day, "end": day},
                                          headers=mint.headers(Role.CITY_DIC, "79"))
    sheet = load_workbook(io.BytesIO(book.content)).active
    assert sheet["B1"].value == "Địa bàn" and sheet.max_row == 1 + 22  # the 22 districts of 2021
    assert await _log(running) == []  # no personal data: not an access to log


async def test_registrations_with_contacts_for_focal_points(running, mint):
    response = await running["reporting"].get("/exports/registrations.csv",
                                              headers=mint.headers(Role.COMMUNE_FOCAL, CAN_THANH))
    rows = _csv(response.content)
    assert len(rows) == 3 and {r["Phường/xã"] for r in rows} == {"Thị trấn Cần Thạnh"}
    assert rows[0]["Người liên hệ"] == "Nguyễn Văn Bình" and rows[0]["Điện thoại"] == "0909123456"
    assert any(r["Tên đơn vị"].startswith("'=HYPERLINK") for r in rows)
    assert await _log(running) == [("registrations.export", "commune_focal", CAN_THANH, 3)]
    book = await running["reporting"].get("/exports/registrations.xlsx",
                                          headers=mint.headers(Role.CITY_DIC, "79"))
    sheet = load_workbook(io.BytesIO(book.content)).active
    assert sheet.max_row == 1 + 9 and all(not str(c.value).startswith("=") for row in sheet for c in row if c.value)
    assert len(await _log(running)) == 2


async def test_registrations_without_contacts_for_health_officers(running, mint):
    response = await running["reporting"].get("/exports/registrations.xlsx",
                                              headers=mint.headers(Role.HEALTH_OFFICER, CAN_GIO))
    sheet = load_workbook(io.BytesIO(response.content)).active
    header = [c.value for c in sheet[1]]
    assert "Người liên hệ" not in header and "Điện thoại" not in header
    assert sheet.max_row == 1 + 6
    assert "0909123456" not in str([[c.value for c in row] for row in sheet])
    assert await _log(running) == []


async def test_refusals(running, mint):
    client = running["reporting"]
    other = await client.get("/exports/registrations.csv", params={"area": BEN_NGHE},
                             headers=mint.headers(Role.DISTRICT_FOCAL, CAN_GIO))
    assert other.status_code == 403 and "ngoài phạm vi" in other.json()["detail"]
    unit = await client.get("/exports/counts.csv", headers=mint.headers(Role.UNIT_ADMIN, CAN_THANH))
    assert unit.status_code == 403
    wrong = await client.get("/exports/counts.pdf", headers=mint.headers(Role.CITY_DIC, "79"))
    assert wrong.status_code == 404
    long = await client.get("/exports/counts.csv", params={"start": (today() - timedelta(days=800)).isoformat()},
                            headers=mint.headers(Role.CITY_DIC, "79"))
    assert long.status_code == 400 and "tối đa" in long.json()["detail"]
