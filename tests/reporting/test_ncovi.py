"""The NCOVI list import: a good .xlsx and a good .csv are saved and counted per commune
(updated, not duplicated, when uploaded again); a bad file is refused whole with a row
report in Vietnamese; communes outside the uploader's area are refused; roles checked."""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook

from libs.common.auth import SESSION_COOKIE, Role
from services.reporting.ncovi import ncovi_counts

from .conftest import CITY, DEMO_COMMUNE, DEMO_DISTRICT, OTHER_COMMUNE, OTHER_DISTRICT, build_settings, run_services

HEADER = ["STT", "Tên đơn vị", "Địa chỉ", "Phường/xã", "Quận/huyện", "Mã số thuế", "Mã NCOVI"]


@pytest.fixture
async def reporting(keys):
    async with run_services({"reporting": build_settings("reporting", keys)}) as running:
        yield running


def xlsx(rows: list[list]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["Danh sách đơn vị đã sử dụng NCOVI"])
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


class Official:
    def __init__(self, client, mint, role, path):  # noqa: ANN001
        self.client = client
        self.headers = {"accept": "text/html", "cookie": f"{SESSION_COOKIE}={mint.token(role, path)}"}

    async def upload(self, name: str, content: bytes, kind: str = "application/octet-stream"):  # noqa: ANN201
        page = await self.client.get("/ncovi", headers=self.headers)
        token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        return await self.client.post("/ncovi", headers=self.headers, data={"csrf_token": token.group(1) if token else ""},
                                      files={"file": (name, content, kind)})


async def counts(reporting, path):  # noqa: ANN001, ANN201
    async with reporting.runtime("reporting").database.transaction(readonly=True) as session:
        return await ncovi_counts(session, path)


async def test_good_files_are_saved_and_counted(reporting, mint):
    district = Official(reporting["reporting"], mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    good = xlsx([[1, "Công ty TNHH Hải Sản Cần Giờ", "12 Đường Duyên Hải", "Thị trấn Cần Thạnh", "", "0312345678", ""],
                 [2, "Trường THCS Bình Khánh", "", "bình khánh", "Cần Giờ", "", "NCOVI-7788"],
                 [3, "Chợ Cần Thạnh", "1 Đường Lương Văn Nho", "27664", "", "0312345679-001", "NC-1"]])
    response = await district.upload("ncovi.xlsx", good)
    assert response.status_code == 200, response.text
    assert "3 đơn vị mới" in response.text
    assert await counts(reporting, DEMO_DISTRICT) == {DEMO_COMMUNE: 2, OTHER_COMMUNE: 1}
    # the same units again, as CSV (semicolons, as Excel writes it in Vietnam): updated, not duplicated
    csv_text = "\n".join([";".join(HEADER), "1;Công ty TNHH Hải Sản Cần Giờ (mới);12 Duyên Hải;Cần Thạnh;;0312345678;"])
    response = await district.upload("ncovi.csv", csv_text.encode("utf-8-sig"), "text/csv")
    assert response.status_code == 200, response.text
    assert "1 đơn vị được cập nhật" in response.text
    assert await counts(reporting, DEMO_DISTRICT) == {DEMO_COMMUNE: 2, OTHER_COMMUNE: 1}
    api = await reporting["reporting"].get("/api/ncovi/counts", headers=mint.headers(Role.CITY_DIC, CITY))
    assert api.json()["total"] == 3
    other = await reporting["reporting"].get("/api/ncovi/counts", headers=mint.headers(Role.COMMUNE_FOCAL, OTHER_COMMUNE))
    assert other.json() == {"total": 1, "communes": {OTHER_COMMUNE: 1}}
    log = (await reporting["reporting"].get("/api/access-log", headers=mint.headers(Role.CITY_DIC, CITY))).json()
    assert [(e["action"], e["row_count"]) for e in log] == [("ncovi.import", 1), ("ncovi.import", 3)]


async def test_bad_file_is_refused_whole_with_a_row_report(reporting, mint):
    district = Official(reporting["reporting"], mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    bad = xlsx([[1, "Công ty đúng", "", "Cần Thạnh", "", "0312345678", ""],
                [2, "", "", "Cần Thạnh", "", "0312345670", ""],
                [3, "Không mã", "", "Cần Thạnh", "", "", ""],
                [4, "Mã sai", "", "Cần Thạnh", "", "12345", ""],
                [5, "Quận 1", "", "Phường Bến Nghé", "Quận 1", "0312345671", ""],
                [6, "Trùng", "", "Cần Thạnh", "", "0312345678", ""]])
    response = await district.upload("ncovi.xlsx", bad)
    assert response.status_code == 422
    text = response.text
    assert "Chưa nhập đơn vị nào" in text
    for message in ("Thiếu tên đơn vị", "Cần có mã số thuế hoặc mã NCOVI", "Mã số thuế gồm 10 chữ số",
                    "không phải phường/xã thuộc địa bàn của bạn", "đã có ở dòng 3"):
        assert message in text, message
    assert 'id="error-count">5<' in text
    assert await counts(reporting, CITY) == {}

    for name, content, message in (("ncovi.pdf", b"%PDF-1.4", "Hãy tải lên tệp .xlsx hoặc .csv"),
                                   ("ncovi.xlsx", b"PK\x03\x04 not a zip", "Không đọc được tệp .xlsx"),
                                   ("ncovi.csv", b"a;b\n1;2\n", "Không tìm thấy dòng tiêu đề"),
                                   ("ncovi.csv", b"", "Tệp trống")):
        response = await district.upload(name, content)
        assert response.status_code == 422 and message in response.text, name


async def test_roles_and_jurisdiction(reporting, mint):
    client = reporting["reporting"]
    commune = Official(client, mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    response = await commune.upload("ncovi.xlsx", xlsx([[1, "A", "", "Cần Thạnh", "", "0312345678", ""]]))
    assert response.status_code == 403
    page = await client.get("/ncovi", headers=commune.headers)
    assert page.status_code == 200 and 'action="/ncovi"' not in page.text
    district1 = Official(client, mint, Role.DISTRICT_FOCAL, OTHER_DISTRICT)
    response = await district1.upload("ncovi.xlsx", xlsx([[1, "A", "", "27664", "", "0312345678", ""]]))
    assert response.status_code == 422 and await counts(reporting, CITY) == {}
    template = await client.get("/ncovi/template.xlsx", headers=district1.headers)
    assert template.status_code == 200 and template.content.startswith(b"PK")
