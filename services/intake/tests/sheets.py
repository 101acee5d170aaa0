"""Builders of list files for the tests: the real template filled in, or broken on purpose."""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence

from openpyxl import Workbook, load_workbook

from services.intake.excel.columns import ORDER

HEADERS_VI = ("STT", "Tên đơn vị *", "Loại hình đơn vị *", "Địa chỉ (số nhà, đường) *", "Phường/xã/thị trấn *",
              "Quận/huyện", "Mã số thuế hoặc mã đơn vị", "Người liên hệ *", "Chức vụ", "Số điện thoại *", "E-mail",
              "Số địa điểm / cổng *", "Ghi chú", "Không phải triển khai (lý do, nếu có)")


def unit_row(i: int, *, commune: str = "Thị trấn Cần Thạnh", kind: str = "Công ty, doanh nghiệp", **over: object) -> dict:
    row = {"unit_name": f"Công ty TNHH Số {i:05d}", "unit_type": kind, "address": f"{i} Đường Lương Văn Nho",
           "commune": commune, "district": "Huyện Cần Giờ", "tax_code": f"03{i:08d}", "contact_name": "Nguyễn Văn An",
           "contact_position": "Giám đốc", "contact_phone": f"0909{i % 1000000:06d}", "contact_email": f"dv{i}@example.com",
           "venue_count": 2, "notes": None, "exemption": None}
    row.update(over)
    return row


def fill_template(template: bytes, rows: Iterable[dict], *, text_cells: Sequence[tuple[int, str, str]] = ()) -> bytes:
    """The system's template with ``rows`` from row 2; ``text_cells``: (row, field, text) written as text
    even when it starts with "=" (a cell a user typed as text)."""
    book = load_workbook(io.BytesIO(template))
    sheet = book.worksheets[0]
    for offset, row in enumerate(rows):
        sheet.cell(row=2 + offset, column=1, value=offset + 1)
        for index, name in enumerate(ORDER, start=2):
            value = row.get(name)
            if value is not None:
                sheet.cell(row=2 + offset, column=index, value=value)
    for number, name, text in text_cells:
        cell = sheet.cell(row=number, column=ORDER.index(name) + 2)
        cell.value = text
        cell.data_type = "s"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def plain_list(rows: Iterable[dict], *, sheet_title: str = "Danh sách", headers: Sequence[str] = HEADERS_VI,
               edit=None) -> bytes:  # noqa: ANN001
    """A list written from scratch (no template); ``edit(sheet)`` may break it."""
    book = Workbook()
    sheet = book.active
    sheet.title = sheet_title
    sheet.append(list(headers))
    for number, row in enumerate(rows, start=1):
        sheet.append([number, *(row.get(name) for name in ORDER)])
    if edit is not None:
        edit(sheet)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def zip_bomb(size: int) -> bytes:
    """A tiny .xlsx-shaped zip whose sheet unpacks to ``size`` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b" " * size)
    return buffer.getvalue()


def with_member(content: bytes, name: str, data: bytes) -> bytes:
    """The workbook with one more zip member (e.g. a VBA project)."""
    source = zipfile.ZipFile(io.BytesIO(content))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info.filename))
        archive.writestr(name, data)
    return buffer.getvalue()
