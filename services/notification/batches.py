"""Forwarded batches in the Support Channel: a message from the district with the list as .xlsx.

``intake.batch.forwarded`` (possibly in several parts) is kept in ``batches`` and
``batch_units``; the district's thread gets one message for the batch, whose attachment
is the spreadsheet of the list template's columns, made when it is downloaded (so that
parts arriving later are in it). Cells that a spreadsheet would run as a formula are
neutralised (the attack on Luca's health-department export).
"""
from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.events.intake import BatchForwarded

from . import support
from .models import Attachment, BatchCopy, BatchUnit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PART_STRIDE = 1_000_000
UNIT_TYPES = {
    "state_agency": "Cơ quan nhà nước", "party_agency": "Cơ quan Đảng",
    "socio_political": "Tổ chức chính trị - xã hội cấp huyện", "district_board": "Ban, ngành cấp huyện",
    "public_service": "Đơn vị sự nghiệp công lập cấp huyện", "company": "Công ty, doanh nghiệp",
    "factory": "Nhà máy, xí nghiệp", "business": "Cơ sở sản xuất, kinh doanh", "school": "Trường học",
    "supermarket": "Siêu thị", "market": "Chợ", "essential_shop": "Cửa hàng cung cấp dịch vụ thiết yếu",
    "other": "Đơn vị khác",
}
COLUMNS = ("STT", "Mã đăng ký", "Tên đơn vị", "Loại hình", "Địa chỉ (số nhà, đường)", "Phường/xã", "Quận/huyện",
           "Mã số thuế / mã đơn vị", "Người liên hệ", "Chức vụ", "Điện thoại", "Thư điện tử", "Số địa điểm/cổng",
           "Ghi chú")
WIDTHS = (6, 14, 40, 24, 36, 24, 20, 18, 24, 18, 14, 30, 10, 20)


def safe_cell(value):  # noqa: ANN001, ANN201
    """Text a spreadsheet would evaluate (=, +, -, @, tab, CR) gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def record(session: AsyncSession, event: BatchForwarded, tree: AdminTree) -> None:
    data = event.data
    batch = await session.get(BatchCopy, data.batch_id)
    total = data.total_units or len(data.units)
    if batch is None:
        batch = BatchCopy(id=data.batch_id, reference=data.reference[:40], district_path=data.district_path,
                          unit_count=total, forwarded_at=event.occurred_at)
        session.add(batch)
        await session.flush()
    incoming = [u.registration_id for u in data.units]
    known: set = set()
    for start in range(0, len(incoming), 500):
        known |= set((await session.execute(select(BatchUnit.registration_id).where(
            BatchUnit.batch_id == batch.id, BatchUnit.registration_id.in_(incoming[start:start + 500])))).scalars())
    rows = []
    for index, unit in enumerate(data.units, start=1):
        if unit.registration_id in known:
            continue
        known.add(unit.registration_id)
        rows.append({
            "batch_id": batch.id, "registration_id": unit.registration_id, "position": data.part * PART_STRIDE + index,
            "reference": unit.reference[:40], "unit_name": unit.unit_name[:300], "unit_type": unit.unit_type[:40],
            "address": unit.address[:300], "commune_path": unit.commune_path, "tax_code": unit.tax_code,
            "contact_name": unit.contact_name[:200], "contact_position": unit.contact_position,
            "contact_phone": unit.contact_phone[:40], "contact_email": unit.contact_email,
            "venue_count": unit.venue_count, "late": unit.late,
        })
    for start in range(0, len(rows), 1000):
        await session.execute(insert(BatchUnit.__table__), rows[start:start + 1000])
    await session.flush()
    units, with_email = (await session.execute(select(func.count(), func.count(BatchUnit.contact_email)).where(
        BatchUnit.batch_id == batch.id))).one()
    batch.unit_count = max(total, units)
    district = tree.get(data.district_path)
    message = await support.post_system(
        session, data.district_path, kind="batch", side="district",
        author=f"Phòng Văn hóa và Thông tin {district.name if district else data.district_path}",
        params={"reference": batch.reference, "count": batch.unit_count, "received": units,
                "with_email": with_email, "batch_id": str(batch.id)},
        source_key=f"batch:{batch.id}", at=event.occurred_at)
    if batch.message_id is None:
        batch.message_id = message.id
        session.add(Attachment(message_id=message.id, filename=f"danh-sach-{batch.reference}.xlsx",
                               content_type=XLSX, size=0, batch_id=batch.id, created_at=datetime.now(UTC)))


async def spreadsheet(session: AsyncSession, batch: BatchCopy, tree: AdminTree) -> bytes:
    """The batch as the list template (.xlsx): one row per unit, in the order forwarded."""
    units = list((await session.execute(select(BatchUnit).where(BatchUnit.batch_id == batch.id)
                                        .order_by(BatchUnit.position))).scalars())
    book = Workbook()
    sheet = book.active
    sheet.title = "Danh sách đơn vị"
    sheet.append([f"DANH SÁCH ĐƠN VỊ ĐĂNG KÝ – LÔ {batch.reference}"])
    sheet["A1"].font = Font(bold=True, size=13)
    district = tree.get(batch.district_path)
    sheet.append([f"{district.name if district else batch.district_path} chuyển Sở Thông tin và Truyền thông; "
                  f"{len(units)} đơn vị"])
    sheet.append(list(COLUMNS))
    header = PatternFill("solid", fgColor="E6EEF1")
    for column, width in enumerate(WIDTHS, start=1):
        cell = sheet.cell(row=3, column=column)
        cell.font, cell.fill = Font(bold=True), header
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.column_dimensions[get_column_letter(column)].width = width
    for number, unit in enumerate(units, start=1):
        commune = tree.get(unit.commune_path)
        district_node = commune.parent if commune is not None else None
        sheet.append([safe_cell(v) for v in (
            number, unit.reference, unit.unit_name, UNIT_TYPES.get(unit.unit_type, unit.unit_type), unit.address,
            commune.name if commune else unit.commune_path, district_node.name if district_node else "",
            unit.tax_code or "", unit.contact_name, unit.contact_position or "", unit.contact_phone,
            unit.contact_email or "", unit.venue_count, "Đăng ký trễ hạn" if unit.late else "")])
    sheet.freeze_panes = "A4"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
