"""The list template and reading a filled list: each kind of bad file gets its own message."""
from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from services.intake.excel.columns import write_text
from services.intake.excel.reader import FileRefused, Limits, parse_list
from services.intake.excel.report import row_report
from services.intake.excel.template import build_template
from services.intake.imports import check_rows

from .sheets import fill_template, plain_list, unit_row, with_member, zip_bomb

LIMITS = Limits(max_bytes=10 * 1024 * 1024, max_uncompressed=50 * 1024 * 1024, max_rows=10_000)


@pytest.fixture(scope="module")
def template(tree) -> bytes:
    return build_template(tree.get("79/787"), deadline=date(2021, 6, 30), inbound_address="danhsach.787@example.vn",
                          form_url="http://intake.test/d/787/register")


def refusal(content: bytes, limits: Limits = LIMITS) -> str:
    with pytest.raises(FileRefused) as refused:
        parse_list(content, limits)
    return refused.value.msg.vi


def test_the_template_has_drop_downs_and_instructions(template, tree):
    book = load_workbook(io.BytesIO(template))
    assert book.sheetnames == ["Danh sách", "Hướng dẫn", "DanhMuc"]
    assert book["DanhMuc"].sheet_state == "hidden"
    data = book["Danh sách"]
    headers = [c.value for c in data[1]]
    assert headers[:4] == ["STT", "Tên đơn vị *", "Loại hình đơn vị *", "Địa chỉ (số nhà, đường) *"]
    assert "E-mail" in headers and "Mã số thuế hoặc mã đơn vị" in headers
    rules = {str(r.sqref)[0]: r for r in data.data_validations.dataValidation}
    assert rules["C"].type == "list" and rules["C"].formula1 == "DanhMuc!$A$1:$A$13"
    assert rules["E"].type == "list" and rules["E"].formula1 == "DanhMuc!$B$1:$B$7"
    assert rules["L"].type == "whole"
    lookup = book["DanhMuc"]
    assert [lookup.cell(row=i, column=2).value for i in range(1, 8)] == [c.name for c in tree.get("79/787").children]
    assert lookup["A1"].value == "Cơ quan nhà nước"
    help_text = " ".join(str(c.value) for row in book["Hướng dẫn"].iter_rows() for c in row if c.value)
    for expected in ("Cột có dấu * là bắt buộc", "30/06/2021", "danhsach.787@example.vn", "không gộp ô",
                     "Thị trấn Cần Thạnh", "Đã sử dụng ứng dụng NCOVI"):
        assert expected in help_text
    english = load_workbook(io.BytesIO(build_template(tree.get("79/787"), lang="en")))
    assert english.sheetnames == ["List", "Instructions", "DanhMuc"]
    assert english["List"]["B1"].value == "Unit name *"


def test_a_filled_template_reads_back(template):
    content = fill_template(template, [unit_row(1), unit_row(2, kind="Trường học", contact_email=None)],
                            text_cells=[(3, "notes", "=1+1 không phải công thức")])
    parsed = parse_list(content, LIMITS)
    assert parsed.sheet == "Danh sách" and parsed.header_row == 1
    assert [r.number for r in parsed.rows] == [2, 3]
    assert parsed.rows[0].values["unit_name"] == "Công ty TNHH Số 00001"
    assert parsed.rows[0].values["tax_code"] == "0300000001"
    assert parsed.rows[0].cells["unit_name"] == "B2"
    assert "contact_email" not in parsed.rows[1].values
    # Text that looks like a formula is text: kept as typed, not a formula.
    assert parsed.rows[1].values["notes"] == "=1+1 không phải công thức"
    assert parsed.rows[1].formulas == []


def test_not_spreadsheets():
    assert "không phải bảng tính Excel (.xlsx)" in refusal(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n")
    assert "không phải bảng tính Excel (.xlsx)" in refusal("Tên đơn vị;Địa chỉ\nCông ty A;1 Đường B\n".encode())
    assert "Excel 97-2003 (.xls)" in refusal(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    assert "không phải bảng tính Excel" in refusal(b"PK\x03\x04" + b"garbage" * 50)
    ods = with_member(zip_bomb(10), "mimetype", b"application/vnd.oasis.opendocument.spreadsheet")
    assert "OpenDocument (.ods)" in refusal(ods)


def test_macros_are_refused(template):
    assert "macro (.xlsm)" in refusal(with_member(template, "xl/vbaProject.bin", b"\0" * 64))


def test_oversized_files():
    big = b"PK\x03\x04" + b"\0" * (11 * 1024 * 1024)
    assert "Tệp quá lớn (11 MB); giới hạn là 10 MB" in refusal(big)
    assert "quá nhiều dữ liệu (60 MB khi giải nén; giới hạn 50 MB)" in refusal(zip_bomb(60 * 1024 * 1024))


def test_wrong_sheet_and_missing_columns():
    other = plain_list([unit_row(1)], sheet_title="Sheet1", headers=("A", "B", "C", "D", "E"))
    message = refusal(other)
    assert "Không tìm thấy trang tính 'Danh sách'" in message and "'Sheet1'" in message
    # The header row is found on a renamed sheet, but required columns are missing.
    partial = plain_list([unit_row(1)], sheet_title="Đơn vị", headers=("STT", "Tên đơn vị", "Loại hình đơn vị",
                                                                          "Địa chỉ"))
    assert "thiếu cột: Người liên hệ, Số điện thoại" in refusal(partial)


def test_merged_cells(template):
    def merge(sheet):  # noqa: ANN001, ANN202
        sheet.merge_cells("B3:D3")

    assert "ô gộp (B3:D3)" in refusal(plain_list([unit_row(1), unit_row(2)], edit=merge))


def test_too_many_rows_and_empty():
    rows = [unit_row(i) for i in range(1, 13)]
    assert "hơn 10 dòng" in refusal(plain_list(rows), Limits(LIMITS.max_bytes, LIMITS.max_uncompressed, 10))
    assert "không có dòng dữ liệu" in refusal(plain_list([]))


def test_formulas_are_reported_on_their_rows(tree):
    def formulas(sheet):  # noqa: ANN001, ANN202
        sheet["J3"] = "=CONCATENATE(\"0909\",\"123456\")"
        sheet["A2"] = "=ROW()-1"

    parsed = parse_list(plain_list([unit_row(1), unit_row(2)], edit=formulas), LIMITS)
    assert parsed.rows[1].formulas == [("contact_phone", "J3", '=CONCATENATE("0909","123456")')]
    checked = check_rows(parsed.rows, tree, district_path="79/787", scope_path="79/787")
    assert set(checked.errors) == {2, 3}
    assert "Ô A2 chứa công thức" in checked.errors[2][0].vi
    assert checked.errors[3][0].vi.startswith("Số điện thoại (ô J3): Ô J3 chứa công thức")


def test_report_keeps_rows_as_sent_and_neutralises_them(tree):
    def as_text(sheet):  # noqa: ANN001, ANN202
        write = sheet["B2"]
        write.value = '=HYPERLINK("http://evil","x")'
        write.data_type = "s"   # typed as text, e.g. after an apostrophe

    parsed = parse_list(plain_list([unit_row(1), unit_row(2)], edit=as_text), LIMITS)
    content = row_report(parsed, {3: ["Số điện thoại: sai"]})
    sheet = load_workbook(io.BytesIO(content)).active
    assert [c.value for c in sheet[1]][:3] == ["Dòng", "LỖI CẦN SỬA", "Tên đơn vị *"]
    assert sheet["A3"].value == 3 and sheet["B3"].value == "Số điện thoại: sai" and sheet["B2"].value is None
    assert sheet["C2"].value == "'=HYPERLINK(\"http://evil\",\"x\")" and sheet["C2"].data_type == "s"


@pytest.mark.parametrize("text", ["=1+1", "+84909123456", "-2", "@SUM(A1)", "\tx"])
def test_exports_never_write_formulas(text):
    from openpyxl import Workbook

    book = Workbook()
    write_text(book.active["A1"], text)
    buffer = io.BytesIO()
    book.save(buffer)
    cell = load_workbook(io.BytesIO(buffer.getvalue())).active["A1"]
    assert cell.data_type == "s" and cell.value == "'" + text
