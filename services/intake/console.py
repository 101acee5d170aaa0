"""The officials' registration pages: the list of their area, one registration, its review."""
from __future__ import annotations

import asyncio
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from libs.common.auth import OFFICIALS, Principal, Role
from libs.common.menu import menu_roles

from .excel.report import registrations_sheet
from .review import ReviewError, allowed_actions, load_for_update, review
from .routing import EXEMPTIONS, STATUSES, UNIT_TYPES
from .service import (
    Filters,
    count_registrations,
    get_registration,
    list_registrations,
    possible_duplicates,
    registration_history,
)
from .registration.spam import count_suspected, discard, list_suspected, may_discard, reason_labels
from .text import Msg
from .web import REVIEWERS, lang_of, official, parse_id, render, runtime_of, with_done

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
EXPORT_LIMIT = 20_000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUS_FILTERS = (*STATUSES, "sent", "forwarded")
NOTHING_CHOSEN = Msg("Hãy chọn ít nhất một đăng ký và một thao tác.", "Choose at least one registration and an action.")


def _filters(request: Request, principal: Principal) -> Filters:
    q = request.query_params
    status = q.get("status") if q.get("status") in STATUS_FILTERS else None
    commune = q.get("commune") or None
    if commune and not principal.covers(commune):
        commune = None
    return Filters(status=status, commune=commune, to_me=q.get("mine") == "1", query=(q.get("q") or "")[:100] or None,
                   late=q.get("late") == "1")


def _exemptions(request: Request) -> list[tuple[str, str]]:
    return [(e.code, e.label(lang_of(request))) for e in EXEMPTIONS.values()]


def _page(request: Request) -> int:
    try:
        return max(1, min(10_000, int(request.query_params.get("page", "1"))))
    except ValueError:
        return 1


@router.get("/")
async def home(request: Request, principal: Principal = Depends(official(*menu_roles("intake", "/")))):
    return await _home(request, principal)


async def _home(request: Request, principal: Principal, *, error: str | None = None, status_code: int = 200,
                values: dict | None = None):  # noqa: ANN202
    runtime = runtime_of(request)
    filters = _filters(request, principal)
    page = _page(request)
    async with runtime.database.transaction(readonly=True) as session:
        total = await count_registrations(session, principal, filters)
        registrations = await list_registrations(session, principal, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                                                 filters=filters)
        suspected = await count_suspected(session, principal)
    node = runtime.tree.get(principal.jurisdiction)
    communes = [u for u in runtime.tree.within(principal.jurisdiction) if not u.children and u.depth >= 2] if node else []
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "done", "lang")]
    return render(request, "intake/home.html", {
        "registrations": registrations, "unit_types": UNIT_TYPES, "total": total, "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)), "base_url": "/?" + urlencode(params) if params else "/",
        "export_url": "/registrations.xlsx" + ("?" + urlencode(params) if params else ""),
        "area": runtime.tree.label(principal.jurisdiction), "filters": filters, "communes": communes,
        "statuses": STATUS_FILTERS, "principal": principal, "suspected": suspected,
        # Rows the caller may accept or return now can be chosen and decided together.
        "bulk": {r.id: allowed_actions(principal, r) for r in registrations
                 if {"accept", "return"} & set(allowed_actions(principal, r))},
        "error": error, "values": values or {},
    }, status_code=status_code)


BULK_LIMIT = PAGE_SIZE
BULK_DONE = {"accept": "bulk_accepted", "return": "bulk_returned"}


@router.post("/registrations/bulk")
async def act_on_several(request: Request, principal: Principal = Depends(official(*REVIEWERS))):
    """Accept or return the chosen registrations together (one reason for all returned):
    each row is checked against the caller's jurisdiction and state and gets its own
    history entry and event; one refused row refuses the whole choice (nothing changes)."""
    runtime = runtime_of(request)
    form = await request.form()
    action = str(form.get("action", ""))
    reason = str(form.get("reason", ""))[:600]
    ids = []
    for value in form.getlist("registration")[:BULK_LIMIT]:
        ids.append(parse_id(str(value)))  # 404 for anything that is not a registration's id
    if action not in BULK_DONE or not ids:
        return await _home(request, principal, error=NOTHING_CHOSEN.text(lang_of(request)), status_code=422,
                           values={"reason": reason})
    try:
        async with runtime.database.transaction() as session:
            for registration_id in dict.fromkeys(ids):
                registration = await load_for_update(session, principal, registration_id)
                if registration is None:
                    raise HTTPException(404)
                await review(session, principal, registration, action, reason=reason)
    except ReviewError as exc:
        message = exc.msg.text(lang_of(request))
        return await _home(request, principal, error=message, status_code=exc.status, values={"reason": reason})
    return RedirectResponse(with_done("/", BULK_DONE[action]), status_code=303)


SPAM_LIMIT = 500


@router.get("/spam")
async def spam(request: Request, principal: Principal = Depends(official(*OFFICIALS))):
    """Suspected spam ("Nghi ngờ spam"): flagged registrations awaiting review, apart from the
    queue, with their reasons; the focal point discards a batch of them in one click."""
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        total = await count_suspected(session, principal)
        registrations = await list_suspected(session, principal, limit=SPAM_LIMIT)
    lang = lang_of(request)
    rows = [(r, reason_labels(r, lang), may_discard(principal, r)) for r in registrations]
    return render(request, "intake/spam.html", {
        "rows": rows, "total": total, "shown": len(rows), "area": runtime.tree.label(principal.jurisdiction),
        "can_discard": any(row[2] for row in rows), "unit_types": UNIT_TYPES,
    })


@router.post("/spam/discard")
async def discard_spam(request: Request,
                       principal: Principal = Depends(official(Role.COMMUNE_FOCAL, Role.DISTRICT_FOCAL))):
    """Discard the selected suspected registrations (returned with the reason, recorded)."""
    runtime = runtime_of(request)
    form = await request.form()
    ids = []
    for value in form.getlist("registration_id")[:SPAM_LIMIT]:
        try:
            ids.append(UUID(str(value)))
        except ValueError:
            continue
    async with runtime.database.transaction() as session:
        done = await discard(session, principal, ids)
    return RedirectResponse(f"/spam?{urlencode({'done': 'discarded', 'n': len(done)})}", status_code=303)


@router.get("/registrations.xlsx")
async def export(request: Request, principal: Principal = Depends(official(*OFFICIALS))):
    """The filtered list as .xlsx (text that looks like a formula is neutralised)."""
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        registrations = await list_registrations(session, principal, limit=EXPORT_LIMIT,
                                                 filters=_filters(request, principal))
    content = await asyncio.to_thread(registrations_sheet, registrations, runtime.tree, lang=lang_of(request))
    return Response(content, media_type=XLSX,
                    headers={"content-disposition": 'attachment; filename="danh-sach-dang-ky.xlsx"',
                             "cache-control": "no-store"})


@router.get("/registrations/{registration_id}")
async def detail(request: Request, registration_id: str, principal: Principal = Depends(official(*OFFICIALS))):
    runtime = runtime_of(request)
    async with runtime.database.transaction(readonly=True) as session:
        registration = await get_registration(session, principal, parse_id(registration_id))
        if registration is None:
            raise HTTPException(404)
        history = await registration_history(session, registration.id)
        candidates = await possible_duplicates(session, registration)
    return render(request, "intake/registration.html", {
        "r": registration, "history": history, "candidates": candidates,
        "actions": allowed_actions(principal, registration), "exemption_options": _exemptions(request),
        "error": None, "values": {},
    })


@router.post("/registrations/{registration_id}/{action}")
async def act(request: Request, registration_id: str, action: str, csrf_token: str = Form(""),
              reason: str = Form(""), duplicate_of: str = Form(""), note: str = Form(""),
              principal: Principal = Depends(official(Role.COMMUNE_FOCAL, Role.DISTRICT_FOCAL, Role.CITY_DIC,
                                                      Role.HEALTH_OFFICER))):
    runtime = runtime_of(request)
    registration_id = parse_id(registration_id)
    try:
        async with runtime.database.transaction() as session:
            registration = await load_for_update(session, principal, registration_id)
            if registration is None:
                raise HTTPException(404)
            await review(session, principal, registration, action, reason=reason[:600],
                         duplicate_of=duplicate_of[:30], note=note[:600])
    except ReviewError as exc:
        async with runtime.database.transaction(readonly=True) as session:
            registration = await get_registration(session, principal, registration_id)
            history = await registration_history(session, registration_id)
            candidates = await possible_duplicates(session, registration)
        return render(request, "intake/registration.html", {
            "r": registration, "history": history, "candidates": candidates,
            "actions": allowed_actions(principal, registration), "exemption_options": _exemptions(request),
            "error": exc.msg.text(lang_of(request)), "failed_action": action,
            "values": {"reason": reason[:600], "duplicate_of": duplicate_of[:30], "note": note[:600]},
        }, status_code=exc.status)
    done = {"accept": "accepted", "return": "returned", "duplicate": "duplicate", "exempt": "exempt"}[action]
    return RedirectResponse(with_done(f"/registrations/{registration_id}", done), status_code=303)
