"""Pages of the NCOVI list: ``GET /ncovi`` (the units already on NCOVI in the caller's area,
the upload form and its help), ``POST /ncovi`` (upload: checked, then saved all or
nothing), ``GET /ncovi/template.xlsx`` (an empty list with the expected columns), and
``GET /api/ncovi/counts`` (per commune)."""
from __future__ import annotations

import asyncio
import io
from math import ceil

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Font

from libs.common.auth import OFFICIALS, Principal, Role, require
from libs.common.console import console_user

from .exposure import local_text
from .ncovi import MAX_BYTES, check_rows, ncovi_counts, ncovi_units_within, read_rows, save_import
from .sheets import XLSX

router = APIRouter(include_in_schema=False)
IMPORT_ROLES = (Role.CITY_DIC, Role.DISTRICT_FOCAL)
PAGE = 100
COLUMN_LABELS = {"name": "Unit name", "address": "Address", "commune": "Commune", "district": "District",
                 "tax_code": "Tax code", "ncovi_id": "NCOVI id"}
TEMPLATE_HEADERS = ("STT", "Tên đơn vị", "Địa chỉ", "Phường/xã", "Quận/huyện", "Mã số thuế", "Mã NCOVI")


async def _page(request: Request, principal: Principal, *, report=None, error: str | None = None,  # noqa: ANN001
                page: int = 1, status_code: int = 200) -> Response:
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        units, total = await ncovi_units_within(session, principal.jurisdiction, limit=PAGE, offset=(page - 1) * PAGE)
        counts = await ncovi_counts(session, principal.jurisdiction)
    return request.app.state.templates.render(request, "reporting/ncovi.html", {
        "units": units, "total": total, "page": page, "pages": max(1, ceil(total / PAGE)), "report": report,
        "error": error, "counts": sorted(counts.items()), "tree": runtime.tree, "local_text": local_text,
        "area": runtime.tree.label(principal.jurisdiction), "can_import": principal.role in IMPORT_ROLES,
        "max_mb": MAX_BYTES // (1024 * 1024), "column_labels": COLUMN_LABELS,
    }, status_code=status_code)


@router.get("/ncovi")
async def ncovi_page(request: Request, page: int = 1, principal: Principal = Depends(console_user(*OFFICIALS))):
    return await _page(request, principal, page=max(1, min(page, 10_000)))


@router.post("/ncovi")
async def ncovi_upload(request: Request, principal: Principal = Depends(console_user(*IMPORT_ROLES))):
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return await _page(request, principal, error="Choose the file to upload.", status_code=422)
    content = await upload.read(MAX_BYTES + 1)
    try:
        rows = await asyncio.to_thread(read_rows, upload.filename, content)
    except ValueError as problem:
        return await _page(request, principal, error=str(problem), status_code=422)
    runtime = request.app.state.runtime
    report = await asyncio.to_thread(check_rows, rows, runtime.tree, principal.jurisdiction)
    if not report.ok:
        return await _page(request, principal, report=report, status_code=422)
    async with runtime.database.transaction() as session:
        await save_import(session, principal, report)
    return await _page(request, principal, report=report)


@router.get("/ncovi/template.xlsx")
async def ncovi_template(principal: Principal = Depends(console_user(*IMPORT_ROLES))) -> Response:
    book = Workbook()
    sheet = book.active
    sheet.title = "NCOVI"
    sheet.append(list(TEMPLATE_HEADERS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for column, width in zip("ABCDEFG", (6, 40, 40, 24, 24, 16, 16), strict=True):
        sheet.column_dimensions[column].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return Response(buffer.getvalue(), media_type=XLSX,
                    headers={"content-disposition": 'attachment; filename="danh-sach-don-vi-ncovi.xlsx"'})


@router.get("/api/ncovi/counts", include_in_schema=True, tags=["ncovi"])
async def ncovi_counts_api(request: Request, principal: Principal = Depends(require(*OFFICIALS))) -> dict:
    """Units already on NCOVI (not asked to deploy) per commune within the caller's area."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        counts = await ncovi_counts(session, principal.jurisdiction)
    return {"total": sum(counts.values()), "communes": counts}
