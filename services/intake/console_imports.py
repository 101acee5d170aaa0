"""Officials' pages for list files: upload a filled template, follow its check and import
(the page refreshes itself while the work runs, no JavaScript needed), read the row
report, and review the lists units sent by e-mail."""
from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from libs.common.auth import OFFICIALS, Principal, Role

from .excel.reader import FileRefused, Limits, check_container
from .imports import (
    PHASE_LABELS,
    RUNNING,
    UPLOAD_STATUS,
    UPLOAD_TONES,
    approve_upload,
    create_upload,
    dismiss_upload,
    error_of,
    get_upload,
    percent,
    registrations_of_upload,
    report_of,
    report_workbook,
    uploads_within,
)
from .mail import Replies
from .review import ReviewError
from .routing import district_path_of
from .text import Msg
from .web import flash, lang_of, official, parse_id, render, runtime_of, with_done
from .worker import wake

router = APIRouter(include_in_schema=False)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REPORT_ROWS_SHOWN = 300
NO_FILE = Msg("Hãy chọn tệp danh sách (.xlsx) để tải lên", "Choose the list file (.xlsx) to upload")
NOT_HERE = Msg("Chỉ đầu mối phường/xã hoặc quận/huyện tải danh sách lên", "Only commune and district focal points "
                                                                         "upload lists")
UPLOADERS = (Role.COMMUNE_FOCAL, Role.DISTRICT_FOCAL)


def limits(request: Request) -> Limits:
    s = runtime_of(request).settings
    return Limits(s.max_upload_bytes, s.max_uncompressed_bytes, s.max_import_rows)


async def read_limited(file: UploadFile, max_bytes: int) -> bytes:
    """The uploaded bytes, reading at most one byte more than allowed."""
    chunks, size = [], 0
    while chunk := await file.read(1 << 20):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            break
    return b"".join(chunks)


async def _imports_page(request: Request, principal: Principal, error: str | None = None, status_code: int = 200):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        uploads = await uploads_within(session, principal)
    district = runtime.tree.get(district_path_of(principal.jurisdiction))
    return render(request, "intake/imports.html", {
        "uploads": uploads, "error": error, "can_upload": principal.role in UPLOADERS,
        "district": district if district is not None and district.depth == 1 else None,
        "status_labels": UPLOAD_STATUS, "status_tones": UPLOAD_TONES,
        "max_mb": runtime.settings.max_upload_bytes // (1024 * 1024), "max_rows": runtime.settings.max_import_rows,
        "list_address": runtime.settings.inbound_address(district.code)
        if runtime.settings.receives_mail and district is not None and district.depth == 1 else None,
    }, status_code=status_code)


@router.get("/imports")
async def imports_page(request: Request, principal: Principal = Depends(official(*OFFICIALS))):
    return await _imports_page(request, principal)


@router.post("/imports")
async def upload(request: Request, file: UploadFile | None = None, csrf_token: str = Form(""),
                 principal: Principal = Depends(official(Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL))):
    lang = lang_of(request)
    runtime = runtime_of(request)
    if principal.role not in UPLOADERS or runtime.tree.get(principal.jurisdiction) is None:
        return await _imports_page(request, principal, NOT_HERE.text(lang), 403)
    if file is None or not file.filename:
        return await _imports_page(request, principal, NO_FILE.text(lang), 422)
    content = await read_limited(file, runtime.settings.max_upload_bytes)
    try:
        check_container(content, limits(request))  # the cheap checks answer at once
    except FileRefused as refused:
        return await _imports_page(request, principal, refused.msg.text(lang), 422)
    async with runtime.database.transaction() as session:
        created = await create_upload(session, scope_path=principal.jurisdiction,
                                      district_path=district_path_of(principal.jurisdiction), source="console",
                                      mode="import", filename=file.filename, content=content,
                                      uploaded_by=principal.name or principal.username)
    wake(runtime)
    return RedirectResponse(with_done(f"/imports/{created.id}", "uploaded"), status_code=303)


@router.get("/imports/{upload_id}")
async def upload_page(request: Request, upload_id: str, principal: Principal = Depends(official(*OFFICIALS))):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        found = await get_upload(session, principal, parse_id(upload_id))
        if found is None:
            raise HTTPException(404)
        registrations = await registrations_of_upload(session, found.id) if found.status == "imported" else []
    report = report_of(found)
    running = found.status in RUNNING
    return render(request, "intake/upload.html", {
        # "File received; every row is being checked" holds only while the rows are checked:
        # the page reloads itself with the same address until the final state.
        "messages": [] if not running and request.query_params.get("done") == "uploaded" else flash(request),
        "u": found, "running": running, "percent": percent(found),
        "phase": PHASE_LABELS.get(found.phase or ""), "file_error": error_of(found),
        "report": report[:REPORT_ROWS_SHOWN], "report_total": len(report), "registrations": registrations[:200],
        "status_labels": UPLOAD_STATUS, "status_tones": UPLOAD_TONES,
        "can_review": found.status == "awaiting_review" and principal.role in UPLOADERS
        and found.scope_path == principal.jurisdiction,
    })


@router.get("/imports/{upload_id}/report.xlsx")
async def report_download(request: Request, upload_id: str, principal: Principal = Depends(official(*OFFICIALS))):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        found = await get_upload(session, principal, parse_id(upload_id))
    if found is None:
        raise HTTPException(404)
    content = await asyncio.to_thread(report_workbook, found, limits(request), lang_of(request))
    if content is None:
        raise HTTPException(404)
    filename = f"bao-cao-loi-{found.reference}.xlsx"
    return Response(content, media_type=XLSX, headers={
        "content-disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
        "cache-control": "no-store"})


@router.post("/imports/{upload_id}/{decision}")
async def decide(request: Request, upload_id: str, decision: str, csrf_token: str = Form(""), note: str = Form(""),
                 principal: Principal = Depends(official(Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL))):
    if decision not in ("approve", "dismiss"):
        raise HTTPException(404)
    runtime = runtime_of(request)
    try:
        async with runtime.database.transaction() as session:
            found = await get_upload(session, principal, parse_id(upload_id))
            if found is None:
                raise HTTPException(404)
            if decision == "approve":
                await approve_upload(session, principal, found)
            else:
                await dismiss_upload(session, principal, found, note[:600])
                if found.source == "email" and found.sender_email:
                    await Replies(runtime.settings, runtime.tree).for_upload(session, found, "dismissed")
    except ReviewError as exc:
        return await _imports_page(request, principal, exc.msg.text(lang_of(request)), exc.status)
    wake(runtime)
    return RedirectResponse(with_done(f"/imports/{found.id}", "approved" if decision == "approve" else "dismissed"),
                            status_code=303)


@router.get("/template.xlsx")
async def console_template(request: Request,
                           principal: Principal = Depends(official(Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL))):
    """The list template of the caller's district (the commune's own communes list is the district's)."""
    runtime = runtime_of(request)
    district = runtime.tree.get(district_path_of(principal.jurisdiction))
    if district is None or district.depth != 1:
        raise HTTPException(404)
    return RedirectResponse(f"/d/{district.code}/mau-danh-sach.xlsx?lang={lang_of(request)}", status_code=303)

