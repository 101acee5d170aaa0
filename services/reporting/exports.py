"""Exports of the caller's jurisdiction as CSV (UTF-8 with BOM, for Excel) and .xlsx:

- ``/exports/counts.{csv,xlsx}``: the dashboard's rows (per district, commune...) for a
  period: funnel, declarations, flagged declarations, alerts. No personal data.
- ``/exports/registrations.{csv,xlsx}``: one row per registered unit and its state. The
  contact person (name, phone, e-mail) only for ``CONTACT_ROLES``; such an export is
  written to the access log with who, where and how many rows.

Every text cell that a spreadsheet would read as a formula is neutralised.
"""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Font

from libs.common.auth import OFFICIALS, Principal, require
from libs.common.ratelimit import client_address

from .accesslog import record_access, record_refusal
from .aggregates import VIETNAM
from .registrations import CONTACT_ROLES, registrations_within
from .report_files import neutralise
from .service import FUNNEL_STEPS, area_dashboard
from .web import area_for, period_from

router = APIRouter(include_in_schema=False)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STEP_TITLES = {"submitted": "Đơn vị đăng ký", "accepted": "Đã duyệt", "exempt": "Được miễn",
               "forwarded": "Đã chuyển lên Thành phố", "issued": "Đã cấp tài khoản", "live": "Đã hoạt động"}
STATUS_TITLES = {"submitted": "Chờ duyệt", "accepted": "Đã duyệt", "returned": "Trả lại", "duplicate": "Trùng",
                 "exempt": "Được miễn"}


def _file(kind: str, name: str, header: list[str], rows: list[list[object]]) -> Response:
    if kind == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows([[neutralise(v) for v in row] for row in rows])
        body, media = ("\ufeff" + out.getvalue()).encode("utf-8"), "text/csv; charset=utf-8"
    elif kind == "xlsx":
        book = Workbook()
        sheet = book.active
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append([neutralise(v) for v in row])
        sheet.freeze_panes = "A2"
        stream = io.BytesIO()
        book.save(stream)
        body, media = stream.getvalue(), XLSX
    else:
        raise HTTPException(404)
    stamp = datetime.now(VIETNAM).strftime("%Y%m%d-%H%M")
    return Response(body, media_type=media, headers={
        "content-disposition": f'attachment; filename="{name}-{stamp}.{kind}"', "cache-control": "private, no-store"})


@router.get("/exports/counts.{kind}")
async def export_counts(request: Request, kind: str, start: str | None = None, end: str | None = None,
                        area: str | None = None, principal: Principal = Depends(require(*OFFICIALS))) -> Response:
    """The dashboard's numbers per area below the caller's node (or ``area``) for the period."""
    runtime = request.app.state.runtime
    path = area_for(request, principal, area)
    period = period_from(start, end)
    async with runtime.database.transaction(readonly=True) as session:
        board = await area_dashboard(session, runtime.tree, path, period, venue_limit=0)
    header = ["Mã địa bàn", "Địa bàn", *(STEP_TITLES[s] for s in FUNNEL_STEPS), "Lượt khai báo", "Xanh", "Vàng",
              "Đỏ", "Tờ khai nghi nhiễm", "Cảnh báo", "Cảnh báo đã tiếp nhận", "Từ ngày", "Đến ngày"]
    rows = [[r.path, r.name, *(r.funnel[s] for s in FUNNEL_STEPS), r.declarations, r.by_result.get("green", 0),
             r.by_result.get("yellow", 0), r.by_result.get("red", 0), r.flagged, r.alerts, r.acknowledged,
             period.start.isoformat(), period.end.isoformat()] for r in board.rows]
    return _file(kind, "so-lieu", header, rows)


@router.get("/exports/registrations.{kind}")
async def export_registrations(request: Request, kind: str, area: str | None = None,
                               principal: Principal = Depends(require(*OFFICIALS))) -> Response:
    """Registered units within the caller's node (or ``area``) and their state. With the
    contact persons (``CONTACT_ROLES``) it is a personal-data export: in the access log,
    granted or refused (an unknown format, an area outside the jurisdiction)."""
    runtime = request.app.state.runtime
    contacts = principal.role in CONTACT_ROLES
    address = client_address(request.scope)
    if kind not in ("csv", "xlsx"):
        if contacts:
            await record_refusal(runtime.database, principal, "registrations.export", "bad_input",
                                 client_address=address)
        raise HTTPException(404)
    try:
        path = area_for(request, principal, area)
    except HTTPException as refused:
        if contacts:
            detail = "outside_jurisdiction" if refused.status_code == 403 else "bad_input"
            await record_refusal(runtime.database, principal, "registrations.export", detail,
                                 scope_path=(area or "").strip()[:60] or None, client_address=address)
        raise
    tree = runtime.tree
    async with runtime.database.transaction() as session:
        items = await registrations_within(session, path)
        if contacts:
            await record_access(session, principal, "registrations.export", scope_path=path, row_count=len(items),
                                detail=kind, now=datetime.now(UTC), client_address=address)
    header = ["Số đăng ký", "Tên đơn vị", "Loại hình", "Địa chỉ", "Phường/xã", "Quận/huyện", "Trạng thái",
              "Đã gửi quận/huyện", "Đã chuyển lên Thành phố", "Trễ hạn", "Ngày đăng ký"]
    if contacts:
        header += ["Người liên hệ", "Điện thoại", "Thư điện tử"]
    rows = []
    for r in items:
        commune = tree.get(r.commune_path)
        district = commune.parent if commune is not None else None
        row = [r.reference, r.unit_name, r.unit_type, r.address, commune.name if commune else r.commune_path,
               district.name if district else "", STATUS_TITLES.get(r.status, r.status), "có" if r.sent else "",
               "có" if r.forwarded else "", "có" if r.late else "",
               r.submitted_at.replace(tzinfo=UTC).astimezone(VIETNAM).strftime("%d/%m/%Y")]
        if contacts:
            row += [r.contact_name, r.contact_phone, r.contact_email or ""]
        rows.append(row)
    return _file(kind, "don-vi-dang-ky", header, rows)
