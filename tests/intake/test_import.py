"""The list import through the real app: all or nothing, with a row-by-row report on the page
and as a spreadsheet; each kind of bad file gets a clear Vietnamese message; text that looks
like a formula is stored as text and neutralised on export."""
from __future__ import annotations

import html
import io
import re

from openpyxl import load_workbook

from libs.common.auth import Role
from services.intake.tests.sheets import fill_template, plain_list, unit_row, with_member, zip_bomb

from .conftest import DEMO_COMMUNE, DEMO_DISTRICT, Browser, headers, upload, wait_upload


async def _registrations(client, auth) -> list[dict]:  # noqa: ANN001
    response = await client.get("/api/registrations?limit=1000", headers=auth)
    assert response.status_code == 200
    return response.json()


async def test_a_good_list_is_imported_whole(intake, mint, template):
    client = intake["intake"]
    auth = headers(mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    rows = [unit_row(i) for i in range(1, 21)]
    rows[3] = unit_row(4, kind="Cơ quan nhà nước", unit_name="Phòng Y tế huyện Cần Giờ")
    rows[4] = unit_row(5, commune="", exemption="Đã sử dụng ứng dụng NCOVI")   # own commune by default
    created = await upload(client, auth, fill_template(template, rows))
    assert created.status_code == 202, created.text
    done = await wait_upload(client, auth, created.json()["id"])
    assert done["status"] == "imported" and done["registration_count"] == 20 and done["percent"] == 100
    registrations = {r["unit_name"]: r for r in await _registrations(client, auth)}
    assert len(registrations) == 20
    agency = registrations["Phòng Y tế huyện Cần Giờ"]
    assert (agency["receiver"], agency["status"]) == ("district", "submitted")
    assert registrations["Công ty TNHH Số 00005"]["status"] == "exempt"
    detail = await client.get(f"/api/registrations/{registrations['Công ty TNHH Số 00001']['id']}", headers=auth)
    assert detail.json()["contact_phone"] == "0909000001" and detail.json()["source"] == "console"


async def test_one_bad_row_refuses_the_whole_file_with_a_row_report(intake, mint, template):
    client = intake["intake"]
    auth = headers(mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    existing = await client.post("/api/registrations", json={
        "unit_name": "Chợ Cần Thạnh", "unit_type": "market", "address": "Đường Lương Văn Nho", "commune_code": "27664",
        "contact_name": "Trần Văn Bảy", "contact_phone": "0909111222", "tax_code": "0312345678"})
    assert existing.status_code == 201
    rows = [unit_row(i) for i in range(1, 16)]
    rows[1] = unit_row(2, unit_name="")                                              # row 3: required
    rows[2] = unit_row(3, contact_phone="12345")                                     # row 4: phone
    rows[3] = unit_row(4, contact_email="khong-phai-email")                          # row 5: e-mail
    rows[4] = unit_row(5, commune="Phường Bến Nghé")                                 # row 6: another district
    rows[5] = unit_row(6, commune="Xã Bình Khánh")                                   # row 7: not this commune
    rows[6] = unit_row(7, tax_code="0300000001")                                     # row 8: same tax as row 2
    rows[7] = unit_row(8, tax_code="0312345678")                                     # row 9: already registered
    rows[8] = unit_row(9, unit_name="Chợ Cần Thạnh", address="Đường Lương Văn Nho", tax_code=None)  # row 10
    rows[9] = unit_row(10, kind="Sòng bạc")                                          # row 11: unit type
    rows[10] = unit_row(11, venue_count="nhiều")                                     # row 12: venues
    content = fill_template(template, rows)
    created = await upload(client, auth, content)
    done = await wait_upload(client, auth, created.json()["id"])
    assert done["status"] == "refused" and done["error_count"] == 10 and done["row_count"] == 15
    # Nothing was imported: only the registration made beforehand exists.
    assert [r["unit_name"] for r in await _registrations(client, auth)] == ["Chợ Cần Thạnh"]

    errors = (await client.get(f"/api/imports/{done['id']}/errors", headers=auth)).json()
    by_row: dict[int, str] = {}
    for error in errors:
        by_row[error["row"]] = by_row.get(error["row"], "") + error["message"]
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert "Chưa điền Tên đơn vị" in by_row[3]
    assert "Số điện thoại (ô J4): Số điện thoại không hợp lệ" in by_row[4]
    assert "E-mail không hợp lệ" in by_row[5]
    assert "Phường/xã không thuộc Huyện Cần Giờ" in by_row[6]
    assert "Chỉ nhập được đơn vị của Thị trấn Cần Thạnh" in by_row[7]
    assert "Trùng mã số thuế với dòng 2 trong tệp" in by_row[8]
    assert f"Mã số thuế đã được đăng ký ({existing.json()['reference']})" in by_row[9]
    assert "Đơn vị cùng tên và địa chỉ đã đăng ký" in by_row[10]
    assert "Loại hình đơn vị không có trong danh sách" in by_row[11]
    assert "Số địa điểm phải là số nguyên từ 1 đến 500" in by_row[12]
    english = (await client.get(f"/api/imports/{done['id']}/errors?lang=en", headers=auth)).json()
    assert any("Invalid phone number" in e["message"] for e in english)
    client.cookies.clear()  # ?lang=en is remembered in a cookie

    # The page shows the same report, in Vietnamese.
    page = await client.get(f"/imports/{done['id']}", headers={**auth, "accept": "text/html"})
    assert page.status_code == 200
    assert "Tệp bị từ chối; không dòng nào được nhập" in page.text
    assert "Có 10 trên 15 dòng cần sửa" in page.text
    assert re.search(r'<td data-label="Dòng" class="num">4</td>', page.text)
    assert "Số điện thoại không hợp lệ" in page.text
    assert 'http-equiv="refresh"' not in page.text   # done: no more refreshing

    # ... and as a spreadsheet: every row as sent, the errors in the first columns.
    report = await client.get(f"/imports/{done['id']}/report.xlsx", headers={**auth, "accept": "text/html"})
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(report.content)).active
    assert [sheet.cell(row=1, column=c).value for c in (1, 2, 3)] == ["Dòng", "LỖI CẦN SỬA", "Tên đơn vị *"]
    assert sheet.max_row == 16
    report_rows = {sheet.cell(row=r, column=1).value: sheet.cell(row=r, column=2).value for r in range(2, 17)}
    assert report_rows[2] is None and "Số điện thoại không hợp lệ" in report_rows[4]
    assert sheet.cell(row=3, column=4).value == "Công ty, doanh nghiệp"

    # Corrected, the same file goes in whole.
    rows[1:11] = [unit_row(i) for i in range(2, 12)]
    fixed = await upload(client, auth, fill_template(template, rows))
    assert (await wait_upload(client, auth, fixed.json()["id"]))["status"] == "imported"
    assert len(await _registrations(client, auth)) == 16


async def test_formula_looking_text_is_stored_as_text_and_neutralised(intake, mint, template):
    client = intake["intake"]
    auth = headers(mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    text = [(2, "unit_name", '=HYPERLINK("http://evil.example","Bấm")'), (2, "notes", "+84 cửa sau"),
            (3, "notes", "-Chi nhánh 2"), (3, "contact_position", "@Trưởng ca")]
    created = await upload(client, auth, fill_template(template, [unit_row(1), unit_row(2)], text_cells=text))
    assert (await wait_upload(client, auth, created.json()["id"]))["status"] == "imported"
    rows = {r["unit_name"]: r for r in await _registrations(client, auth)}
    link = '=HYPERLINK("http://evil.example","Bấm")'
    stored = (await client.get(f"/api/registrations/{rows[link]['id']}", headers=auth)).json()
    assert stored["notes"] == "+84 cửa sau"
    other = (await client.get(f"/api/registrations/{rows['Công ty TNHH Số 00002']['id']}", headers=auth)).json()
    assert (other["notes"], other["contact_position"]) == ("-Chi nhánh 2", "@Trưởng ca")
    # The page escapes it; the export writes it as text with a leading apostrophe, never a formula.
    page = await client.get("/", headers={**auth, "accept": "text/html"})
    assert "=HYPERLINK(&#34;http://evil.example&#34;" in page.text
    export = await client.get("/registrations.xlsx", headers={**auth, "accept": "text/html"})
    sheet = load_workbook(io.BytesIO(export.content)).active
    cells = [c for row in sheet.iter_rows(min_row=2) for c in row if isinstance(c.value, str)]
    assert all(c.data_type == "s" for c in cells)
    values = {c.value for c in cells}
    assert "'=HYPERLINK(\"http://evil.example\",\"Bấm\")" in values
    assert {"'+84 cửa sau", "'-Chi nhánh 2", "'@Trưởng ca"} <= values
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)


BAD_AT_ONCE = {
    "pdf": (b"%PDF-1.7\n" + b"x" * 500, "không phải bảng tính Excel (.xlsx)"),
    "csv": ("STT,Tên đơn vị\n1,Công ty A\n".encode(), "không phải bảng tính Excel (.xlsx)"),
    "xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4000, "Excel 97-2003 (.xls)"),
    "zip bomb": (zip_bomb(51 * 1024 * 1024), "quá nhiều dữ liệu"),
}


async def test_bad_files_refused_at_once(intake, mint, template):
    client = intake["intake"]
    auth = headers(mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    cases = {**BAD_AT_ONCE, "macros": (with_member(template, "xl/vbaProject.bin", b"\0" * 10), "macro (.xlsm)"),
             "50 MB": (b"PK\x03\x04" + b"\0" * (50 * 1024 * 1024), "Tệp quá lớn")}
    browser = Browser(client, mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    for name, (content, message) in cases.items():
        response = await upload(client, auth, content, filename=f"{name}.xlsx")
        assert response.status_code == 422, name
        assert message in response.json()["detail"], (name, response.json())
        page = await browser.post("/imports", files={"file": (f"{name}.xlsx", content, "application/octet-stream")},
                                  csrf_from="/imports")
        assert page.status_code == 422 and message in page.text, name
        assert 'role="alert"' in page.text
    assert (await client.get("/api/imports", headers=auth)).json() == []


async def test_bad_files_refused_after_reading(intake, mint, template):
    client = intake["intake"]
    auth = headers(mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)

    def merged(sheet):  # noqa: ANN001, ANN202
        sheet.merge_cells("B2:C2")

    def formula(sheet):  # noqa: ANN001, ANN202
        sheet["J3"] = "=A1*2"

    too_many = plain_list([unit_row(i) for i in range(1, 10_003)])
    cases = {
        "wrong sheet": (plain_list([unit_row(1)], sheet_title="Sheet1", headers=("Họ tên", "Tuổi", "Lớp")),
                        "Không tìm thấy trang tính 'Danh sách'"),
        "missing columns": (plain_list([unit_row(1)], headers=("STT", "Tên đơn vị", "Loại hình đơn vị", "Địa chỉ")),
                            "thiếu cột"),
        "merged": (plain_list([unit_row(1), unit_row(2)], edit=merged), "có ô gộp (B2:C2)"),
        "too many rows": (too_many, "Danh sách có hơn 10.000 dòng"),
        "damaged": (b"PK\x03\x04" + template[4:3000], "không"),
    }
    for name, (content, message) in cases.items():
        response = await upload(client, auth, content, filename=f"{name}.xlsx")
        if response.status_code == 422:  # a damaged zip may already fail the quick checks
            assert name == "damaged" and message in response.json()["detail"]
            continue
        done = await wait_upload(client, auth, response.json()["id"])
        assert done["status"] == "refused" and message in done["error"]["vi"], (name, done)
        page = await client.get(f"/imports/{done['id']}", headers={**auth, "accept": "text/html"})
        assert message in html.unescape(page.text) and "không dòng nào được nhập" in page.text
    formula_file = await upload(client, auth, plain_list([unit_row(1), unit_row(2)], edit=formula))
    done = await wait_upload(client, auth, formula_file.json()["id"])
    assert done["status"] == "refused" and done["error_count"] == 1
    errors = (await client.get(f"/api/imports/{done['id']}/errors", headers=auth)).json()
    assert errors == [{"row": 3, "column": "", "message":
                       "Số điện thoại (ô J3): Ô J3 chứa công thức (=A1*2); hãy nhập giá trị (Dán đặc biệt > Giá trị)."}]
    assert await _registrations(client, auth) == []


async def test_the_progress_page_refreshes_itself_while_the_work_runs(intake, mint):
    """Progress is stored in the database: any process can show it (here a job another worker holds)."""
    import time as clock

    from services.intake.imports import create_upload

    runtime = intake.runtime("intake")
    async with runtime.database.transaction() as session:
        job = await create_upload(session, scope_path=DEMO_DISTRICT, district_path=DEMO_DISTRICT, source="console",
                                  mode="import", filename="lon.xlsx", content=b"PK", uploaded_by="Cán bộ")
        job.status, job.phase, job.processed_rows, job.total_rows = "validating", "checking", 1000, 4000
        job.lease_owner, job.lease_until = "another-process", clock.time() + 600
    auth = headers(mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    page = await intake["intake"].get(f"/imports/{job.id}", headers={**auth, "accept": "text/html"})
    assert page.status_code == 200
    assert '<meta http-equiv="refresh" content="1">' in page.text
    assert '<progress class="progress__bar" id="upload-progress" max="100" value="60">' in page.text
    assert "Kiểm tra từng dòng" in page.text and "1000 / 4000 dòng" in page.text
    assert "<script" not in page.text
    api = (await intake["intake"].get(f"/api/imports/{job.id}", headers=auth)).json()
    assert (api["status"], api["phase"], api["percent"]) == ("validating", "checking", 60)
