"""Officials' pages: a commune's list to the district, the district's batches to the city,
and progress against the deadline."""
from __future__ import annotations

import asyncio
from uuid import UUID

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from libs.common.auth import OFFICIALS, Principal, Role

from .excel.report import registrations_sheet
from .lists import (
    batches_within,
    forward_batch,
    forwardable,
    get_batch,
    get_list,
    lists_within,
    members,
    send_list,
    sendable,
)
from .progress import progress
from .review import ReviewError
from .text import Msg
from .web import lang_of, official, parse_id, render, runtime_of, with_done

router = APIRouter(include_in_schema=False)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHOOSE_ONE = Msg("Hãy chọn ít nhất một đăng ký", "Choose at least one registration")


async def _lists_page(request: Request, principal: Principal, error: str | None = None, status_code: int = 200):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        ready = await sendable(session, principal)
        sent = await lists_within(session, principal)
    return render(request, "intake/lists.html", {
        "ready": ready, "sent": sent, "principal": principal, "can_send": principal.role == Role.COMMUNE_FOCAL,
        "area": runtime.tree.label(principal.jurisdiction), "error": error,
    }, status_code=status_code)


@router.get("/lists")
async def lists_page(request: Request, principal: Principal = Depends(official(*OFFICIALS))):
    return await _lists_page(request, principal)


@router.post("/lists")
async def send(request: Request, csrf_token: str = Form(""),
               principal: Principal = Depends(official(Role.COMMUNE_FOCAL))):
    runtime = runtime_of(request)
    try:
        async with runtime.database.transaction() as session:
            sent = await send_list(session, principal)
    except ReviewError as exc:
        return await _lists_page(request, principal, exc.msg.text(lang_of(request)), exc.status)
    return RedirectResponse(with_done(f"/lists/{sent.id}", "sent"), status_code=303)


@router.get("/lists/{list_id}")
async def list_page(request: Request, list_id: str, principal: Principal = Depends(official(*OFFICIALS))):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        sent = await get_list(session, principal, parse_id(list_id))
        if sent is None:
            raise HTTPException(404)
        registrations = await members(session, principal, list_id=sent.id)
    return render(request, "intake/list.html", {"sent": sent, "registrations": registrations})


async def _forward_page(request: Request, principal: Principal, error: str | None = None, status_code: int = 200):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        ready = await forwardable(session, principal)
        batches = await batches_within(session, principal)
        received = await lists_within(session, principal) if principal.role != Role.COMMUNE_FOCAL else []
    return render(request, "intake/forward.html", {
        "ready": ready, "batches": batches, "received": received[:20], "principal": principal,
        "can_forward": principal.role == Role.DISTRICT_FOCAL, "area": runtime.tree.label(principal.jurisdiction),
        "error": error,
    }, status_code=status_code)


@router.get("/forward")
async def forward_page(request: Request, principal: Principal = Depends(official(*OFFICIALS))):
    return await _forward_page(request, principal)


@router.post("/forward")
async def forward(request: Request, principal: Principal = Depends(official(Role.DISTRICT_FOCAL))):
    form = await request.form()
    runtime = runtime_of(request)
    ids: list[UUID] | None = None
    if form.get("scope") == "selected":
        try:
            ids = [UUID(str(v)) for v in form.getlist("registration")][:20_000]
        except ValueError:
            ids = []
        if not ids:
            return await _forward_page(request, principal, CHOOSE_ONE.text(lang_of(request)), 422)
    try:
        async with runtime.database.transaction() as session:
            batch = await forward_batch(session, principal, ids)
    except ReviewError as exc:
        return await _forward_page(request, principal, exc.msg.text(lang_of(request)), exc.status)
    return RedirectResponse(with_done(f"/batches/{batch.id}", "forwarded"), status_code=303)


@router.get("/batches/{batch_id}.xlsx")
async def batch_export(request: Request, batch_id: str, principal: Principal = Depends(official(*OFFICIALS))):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        batch = await get_batch(session, principal, parse_id(batch_id))
        if batch is None:
            raise HTTPException(404)
        registrations = await members(session, principal, batch_id=batch.id)
    content = await asyncio.to_thread(registrations_sheet, registrations, runtime.tree, lang=lang_of(request),
                                      title=batch.reference)
    return Response(content, media_type=XLSX, headers={
        "content-disposition": f'attachment; filename="{batch.reference}.xlsx"', "cache-control": "no-store"})


@router.get("/batches/{batch_id}")
async def batch_page(request: Request, batch_id: str, principal: Principal = Depends(official(*OFFICIALS))):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        batch = await get_batch(session, principal, parse_id(batch_id))
        if batch is None:
            raise HTTPException(404)
        registrations = await members(session, principal, batch_id=batch.id)
    return render(request, "intake/batch.html", {"batch": batch, "registrations": registrations})


@router.get("/progress")
async def progress_page(request: Request, principal: Principal = Depends(official(*OFFICIALS))):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        result = await progress(session, runtime.tree, principal, deadline=runtime.settings.campaign_deadline)
    return render(request, "intake/progress.html", {
        "progress": result, "area": runtime.tree.label(principal.jurisdiction)})
