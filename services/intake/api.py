"""JSON endpoints of the intake service. Every list and record is filtered by the caller's
jurisdiction on the server; decisions need the focal point that receives the registration."""
from __future__ import annotations

import asyncio

from uuid import UUID

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import Response

from libs.common.auth import OFFICIALS, Principal, Role, require

from .console_imports import limits, read_limited
from .excel.reader import FileRefused, check_container
from .imports import (
    approve_upload,
    create_upload,
    dismiss_upload,
    error_of,
    get_upload,
    percent,
    report_of,
    report_workbook,
    uploads_within,
)
from .lists import batches_within, forward_batch, forwardable, get_batch, get_list, lists_within, members, send_list
from .mail import Replies
from .progress import progress
from .review import ReviewError, load_for_update, review
from .routing import district_path_of
from .schemas import (
    BatchOut,
    DuplicateIn,
    ExemptIn,
    ForwardIn,
    ListOut,
    ProgressOut,
    ProgressRow,
    RegistrationCreated,
    RegistrationDetail,
    RegistrationIn,
    RegistrationOut,
    ReturnIn,
    RowErrorOut,
    StatusOut,
    UploadOut,
)
from .service import Filters, RegistrationRejected, find_by_token, get_registration, list_registrations, submit_registration
from .registration.spam import RegistrationLimited, client_address
from .stages import headline, stage
from .web import lang_of
from .worker import wake

router = APIRouter(prefix="/api", tags=["registrations"])
REVIEWERS = require(Role.COMMUNE_FOCAL, Role.DISTRICT_FOCAL)
READERS = require(*OFFICIALS)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _status_url(request: Request, reference: str, token: str) -> str:
    base = request.app.state.runtime.settings.service_urls.get("intake", "").rstrip("/")
    return f"{base}/status/{reference}/{token}"


def _fail(exc: ReviewError, request: Request) -> HTTPException:
    return HTTPException(exc.status, exc.msg)


@router.post("/registrations", status_code=201, response_model=RegistrationCreated, responses={
    429: {"description": "too many registrations from this address in the last hour, or for this tax code or "
                         "e-mail awaiting review (Vietnamese and English; wait, or contact the commune)"}})
async def create_registration(payload: RegistrationIn, request: Request) -> RegistrationCreated:
    """A unit registers itself (no sign-in); the answer carries its reference and its status page.
    Too many registrations from one address, or for one tax code or e-mail: 429 (README
    "Registration spam")."""
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            registration = await submit_registration(
                session, runtime.tree, payload, deadline=runtime.settings.campaign_deadline,
                settings=runtime.settings, client_address=client_address(request))
    except RegistrationRejected as exc:
        raise HTTPException(422, exc.msg) from None
    except RegistrationLimited as exc:
        raise HTTPException(429, exc.msg, headers={"retry-after": "3600"}) from None
    return RegistrationCreated(**RegistrationOut.model_validate(registration, from_attributes=True).model_dump(),
                               status_url=_status_url(request, registration.reference, registration.status_token))


@router.get("/registrations", response_model=list[RegistrationOut])
async def get_registrations(request: Request, principal: Principal = Depends(READERS),
                            status: str | None = Query(None, pattern="^(submitted|accepted|returned|duplicate|exempt|sent|forwarded)$"),
                            commune: str | None = Query(None, max_length=60), mine: bool = False,
                            q: str | None = Query(None, max_length=100), limit: int = Query(200, ge=1, le=1000),
                            offset: int = Query(0, ge=0, le=1_000_000)) -> list:
    """Registrations of units located within the caller's jurisdiction (``mine``: those it receives)."""
    filters = Filters(status=status, commune=commune if commune and principal.covers(commune) else None, to_me=mine,
                      query=q)
    if commune and not principal.covers(commune):
        return []
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await list_registrations(session, principal, limit=limit, offset=offset, filters=filters)
    return [RegistrationOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/registrations/{registration_id}", response_model=RegistrationDetail)
async def get_one(registration_id: UUID, request: Request, principal: Principal = Depends(READERS)):
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        registration = await get_registration(session, principal, registration_id)
    if registration is None:
        raise HTTPException(404, "Không tìm thấy đăng ký / Registration not found")
    return RegistrationDetail.model_validate(registration, from_attributes=True)


async def _decide(request: Request, principal: Principal, registration_id: UUID, action: str, **kwargs: object):
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            registration = await load_for_update(session, principal, registration_id)
            if registration is None:
                raise HTTPException(404, "Không tìm thấy đăng ký / Registration not found")
            await review(session, principal, registration, action, **kwargs)
    except ReviewError as exc:
        raise _fail(exc, request) from None
    return RegistrationDetail.model_validate(registration, from_attributes=True)


@router.post("/registrations/{registration_id}/accept", response_model=RegistrationDetail)
async def accept(registration_id: UUID, request: Request, principal: Principal = Depends(REVIEWERS)):
    return await _decide(request, principal, registration_id, "accept")


@router.post("/registrations/{registration_id}/return", response_model=RegistrationDetail)
async def return_(registration_id: UUID, body: ReturnIn, request: Request, principal: Principal = Depends(REVIEWERS)):
    return await _decide(request, principal, registration_id, "return", reason=body.reason)


@router.post("/registrations/{registration_id}/duplicate", response_model=RegistrationDetail)
async def duplicate(registration_id: UUID, body: DuplicateIn, request: Request,
                    principal: Principal = Depends(REVIEWERS)):
    return await _decide(request, principal, registration_id, "duplicate", duplicate_of=body.duplicate_of)


@router.post("/registrations/{registration_id}/exempt", response_model=RegistrationDetail)
async def exempt(registration_id: UUID, body: ExemptIn, request: Request, principal: Principal = Depends(REVIEWERS)):
    return await _decide(request, principal, registration_id, "exempt", reason=body.reason, note=body.note)


@router.get("/status/{reference}/{token}", response_model=StatusOut, tags=["public"])
async def status(reference: str, token: str, request: Request):
    """A unit's own status: its reference and the token of its status link (no sign-in)."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        registration = await find_by_token(session, reference[:20], token[:40])
    if registration is None:
        raise HTTPException(404, "Không tìm thấy đăng ký / Registration not found")
    title, explanation, _ = headline(registration)
    lang = lang_of(request)
    return StatusOut(reference=registration.reference, unit_name=registration.unit_name, status=registration.status,
                     stage=stage(registration), message=f"{title.text(lang)}. {explanation.text(lang)}",
                     late=registration.late, submitted_at=registration.submitted_at)


# --- lists and batches -------------------------------------------------------------------

@router.get("/lists", response_model=list[ListOut], tags=["lists"])
async def get_lists(request: Request, principal: Principal = Depends(READERS)):
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        return [ListOut.model_validate(x, from_attributes=True) for x in await lists_within(session, principal)]


@router.post("/lists", status_code=201, response_model=ListOut, tags=["lists"])
async def post_list(request: Request, principal: Principal = Depends(require(Role.COMMUNE_FOCAL))):
    """The commune sends its accepted registrations to the district focal point."""
    try:
        async with request.app.state.runtime.database.transaction() as session:
            sent = await send_list(session, principal)
    except ReviewError as exc:
        raise _fail(exc, request) from None
    return ListOut.model_validate(sent, from_attributes=True)


@router.get("/lists/{list_id}", response_model=list[RegistrationOut], tags=["lists"])
async def get_list_members(list_id: UUID, request: Request, principal: Principal = Depends(READERS)):
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        sent = await get_list(session, principal, list_id)
        if sent is None:
            raise HTTPException(404, "Không tìm thấy danh sách / List not found")
        rows = await members(session, principal, list_id=list_id)
    return [RegistrationOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/forwardable", response_model=list[RegistrationOut], tags=["lists"])
async def get_forwardable(request: Request, principal: Principal = Depends(require(Role.DISTRICT_FOCAL))):
    """Accepted registrations of the district ready for the city (its own and its communes' lists)."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await forwardable(session, principal)
    return [RegistrationOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/batches", status_code=201, response_model=BatchOut, tags=["lists"])
async def post_batch(request: Request, body: ForwardIn | None = None,
                     principal: Principal = Depends(require(Role.DISTRICT_FOCAL))):
    """Forward a batch to the city DIC through the Support Channel (``intake.batch.forwarded``)."""
    try:
        async with request.app.state.runtime.database.transaction() as session:
            batch = await forward_batch(session, principal, body.registration_ids if body else None)
    except ReviewError as exc:
        raise _fail(exc, request) from None
    return BatchOut.model_validate(batch, from_attributes=True)


@router.get("/batches", response_model=list[BatchOut], tags=["lists"])
async def get_batches(request: Request, principal: Principal = Depends(READERS)):
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        return [BatchOut.model_validate(b, from_attributes=True) for b in await batches_within(session, principal)]


@router.get("/batches/{batch_id}", response_model=list[RegistrationOut], tags=["lists"])
async def get_batch_members(batch_id: UUID, request: Request, principal: Principal = Depends(READERS)):
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        batch = await get_batch(session, principal, batch_id)
        if batch is None:
            raise HTTPException(404, "Không tìm thấy đợt chuyển / Batch not found")
        rows = await members(session, principal, batch_id=batch_id)
    return [RegistrationOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/progress", response_model=ProgressOut, tags=["lists"])
async def get_progress(request: Request, principal: Principal = Depends(READERS)):
    """Per office below the caller: registered, reviewed, sent, forwarded, exempt, late."""
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        result = await progress(session, runtime.tree, principal, deadline=runtime.settings.campaign_deadline)
    return ProgressOut(deadline=result.deadline.isoformat() if result.deadline else None, days_left=result.days_left,
                       rows=[ProgressRow(**vars(r)) for r in result.rows])


# --- list files --------------------------------------------------------------------------

def _upload_out(upload) -> UploadOut:  # noqa: ANN001
    error = error_of(upload)
    return UploadOut(**{k: getattr(upload, k) for k in (
        "id", "reference", "scope_path", "source", "mode", "status", "filename", "size", "phase", "processed_rows",
        "total_rows", "row_count", "error_count", "registration_count", "received_at", "finished_at")},
        percent=percent(upload), error=error.as_dict() if error else None)


@router.post("/imports", status_code=202, response_model=UploadOut, tags=["imports"])
async def post_import(request: Request, file: UploadFile = File(...),
                      principal: Principal = Depends(REVIEWERS)):
    """Upload a filled list template: checked and imported in the background, all or nothing.
    Follow ``GET /api/imports/{id}`` for the progress and the result."""
    runtime = request.app.state.runtime
    if runtime.tree.get(principal.jurisdiction) is None:
        raise HTTPException(403, "Ngoài phạm vi quản lý của bạn / Outside your jurisdiction")
    content = await read_limited(file, runtime.settings.max_upload_bytes)
    try:
        check_container(content, limits(request))
    except FileRefused as refused:
        raise HTTPException(422, refused.msg) from None
    async with runtime.database.transaction() as session:
        created = await create_upload(session, scope_path=principal.jurisdiction,
                                      district_path=district_path_of(principal.jurisdiction), source="console",
                                      mode="import", filename=file.filename or "danh-sach.xlsx", content=content,
                                      uploaded_by=principal.name or principal.username)
    wake(runtime)
    return _upload_out(created)


@router.get("/imports", response_model=list[UploadOut], tags=["imports"])
async def get_imports(request: Request, principal: Principal = Depends(READERS)):
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        return [_upload_out(u) for u in await uploads_within(session, principal)]


@router.get("/imports/{upload_id}", response_model=UploadOut, tags=["imports"])
async def get_import(upload_id: UUID, request: Request, principal: Principal = Depends(READERS)):
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        found = await get_upload(session, principal, upload_id)
    if found is None:
        raise HTTPException(404, "Không tìm thấy tệp / Upload not found")
    return _upload_out(found)


@router.get("/imports/{upload_id}/errors", response_model=list[RowErrorOut], tags=["imports"])
async def get_import_errors(upload_id: UUID, request: Request, principal: Principal = Depends(READERS)):
    """The row report of a refused list: one entry per error."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        found = await get_upload(session, principal, upload_id)
    if found is None:
        raise HTTPException(404, "Không tìm thấy tệp / Upload not found")
    lang = lang_of(request)
    return [RowErrorOut(row=item["row"], column="", message=e["en"] if lang == "en" else e["vi"])
            for item in report_of(found) for e in item["errors"]]


@router.get("/imports/{upload_id}/report.xlsx", tags=["imports"])
async def get_import_report(upload_id: UUID, request: Request, principal: Principal = Depends(READERS)):
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        found = await get_upload(session, principal, upload_id)
    if found is None:
        raise HTTPException(404, "Không tìm thấy tệp / Upload not found")
    content = await asyncio.to_thread(report_workbook, found, limits(request), lang_of(request))
    if content is None:
        raise HTTPException(404, "Tệp không có báo cáo theo dòng / No row report for this file")
    return Response(content, media_type=XLSX,
                    headers={"content-disposition": f'attachment; filename="bao-cao-loi-{found.reference}.xlsx"'})


@router.post("/imports/{upload_id}/approve", response_model=UploadOut, tags=["imports"])
async def approve(upload_id: UUID, request: Request, principal: Principal = Depends(REVIEWERS)):
    """Import a list that arrived by e-mail (checked again, then imported in the background)."""
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            found = await get_upload(session, principal, upload_id)
            if found is None:
                raise HTTPException(404, "Không tìm thấy tệp / Upload not found")
            await approve_upload(session, principal, found)
    except ReviewError as exc:
        raise _fail(exc, request) from None
    wake(runtime)
    return _upload_out(found)


@router.post("/imports/{upload_id}/dismiss", response_model=UploadOut, tags=["imports"])
async def dismiss(upload_id: UUID, body: ReturnIn, request: Request, principal: Principal = Depends(REVIEWERS)):
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            found = await get_upload(session, principal, upload_id)
            if found is None:
                raise HTTPException(404, "Không tìm thấy tệp / Upload not found")
            await dismiss_upload(session, principal, found, body.reason)
            if found.source == "email" and found.sender_email:
                await Replies(runtime.settings, runtime.tree).for_upload(session, found, "dismissed")
    except ReviewError as exc:
        raise _fail(exc, request) from None
    return _upload_out(found)



