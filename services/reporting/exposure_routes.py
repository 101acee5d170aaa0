"""Pages and JSON endpoints of the exposure query and of the access log.

Console: ``GET /exposure`` (the form and its help), ``POST /exposure`` (run: the contacts
on the page), ``POST /exposure/export`` (the same query as .xlsx, logged as an export),
``GET /access-log``. API (bearer token): ``POST /api/exposure``, ``POST /api/exposure/case-visits``
(a case's own visits by phone, ``case_visits.py``), ``GET /api/access-log``.
Queries are POSTed: no personal data, case reference or reason travels in a URL.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from math import ceil
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from libs.common.auth import OFFICIALS, Principal, refused_request_fields, require
from libs.common.console import console_user
from libs.common.problems import PLEASE_CORRECT, problem_response
from libs.common.ratelimit import client_address
from libs.common.ui.i18n import normalize_locale

from .accesslog import entries_within, record_refusal
from .case_visits import ACTION as CASE_VISITS, check_case_visits, find_case_visits
from .exposure import (
    EXPOSURE_ROLES, LOCAL_TZ, PAGE_ROWS, ExposureForm, ExposureInvalid, ExposureRefused, ExposureResult, check_form,
    invalid_detail, local_input, local_text, run_exposure, venue_choices,
)
from .sheets import XLSX, exposure_workbook

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["exposure"])
LOG_PAGE = 50
ACTIONS = {"exposure.query": "Exposure query", "exposure.export": "Exposure export",
           "fhir.read": "FHIR export", "ncovi.import": "NCOVI import",
           "registrations.export": "Registrations export", "subject.find": "Subject request: search",
           "subject.export": "Subject request: export", "subject.erase": "Subject request: erasure",
           "exposure.case_visits": "Exposure query: a case's visits"}
OUTCOMES = {"ok": "Done", "refused": "Refused"}
# Why a request was refused, as the access-log page names it (the codes of the ``detail`` column).
REFUSALS = {"no_case_reference": "no case reference", "no_reason": "no reason given",
            "bad_input": "invalid input", "unknown_venue": "unknown venue",
            "unknown_declaration": "unknown declaration", "outside_jurisdiction": "outside the official's area",
            "role_not_permitted": "role not permitted", "no_purpose": "no purpose given",
            "unknown_purpose": "unknown purpose", "purpose_not_allowed": "purpose not permitted",
            "no_scope": "token without the scope", "no_reference": "no request reference",
            "not_confirmed": "not confirmed"}


def _said(value: object, limit: int) -> str | None:
    text = " ".join(str(value or "").split())[:limit]
    return text or None


async def _log_refusal(request: Request, principal: Principal, action: str, detail: str,
                       form: ExposureForm | None = None) -> None:
    """A refused exposure query or export: its own transaction, since the answer is an error."""
    await record_refusal(request.app.state.runtime.database, principal, action, detail,
                         case_reference=_said(form.case_reference, 80) if form else None,
                         reason=_said(form.reason, 500) if form else None,
                         client_address=client_address(request.scope))


def _refused_role(action: str):  # noqa: ANN202
    """``on_refusal`` of the exposure routes: a role not permitted is logged with the case
    reference and reason it gave, if any."""
    async def hook(request: Request, principal: Principal) -> None:
        given = await refused_request_fields(request, "case_reference", "reason")
        await _log_refusal(request, principal, action, "role_not_permitted", ExposureForm(**given))
    return hook


def _lang(request: Request) -> str:
    return normalize_locale(getattr(request.state, "lang", None)) or "vi"


async def _form(request: Request) -> ExposureForm:
    data = await request.form()
    text = {k: str(data.get(k) or "")[:2000] for k in ("case_reference", "reason", "venue", "venue_code",
                                                        "declaration_id", "start", "end")}
    return ExposureForm(case_reference=text["case_reference"], reason=text["reason"],
                        venue=text["venue_code"].strip() or text["venue"], declaration_id=text["declaration_id"],
                        start=text["start"], end=text["end"])


async def _page(request: Request, principal: Principal, form: ExposureForm, *, errors: dict | None = None,
                result: ExposureResult | None = None, status_code: int = 200) -> Response:
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        venues = await venue_choices(session, principal)
    return request.app.state.templates.render(request, "reporting/exposure.html", {
        "form": form, "errors": errors or {}, "result": result, "venues": venues, "page_rows": PAGE_ROWS,
        "area": runtime.tree.label(principal.jurisdiction), "local_text": local_text, "local_input": local_input,
    }, status_code=status_code)


@router.get("/exposure")
async def exposure_form(request: Request, principal: Principal = Depends(console_user(*EXPOSURE_ROLES))):
    return await _page(request, principal, ExposureForm())


@router.post("/exposure")
async def exposure_run(request: Request, principal: Principal = Depends(
        console_user(*EXPOSURE_ROLES, on_refusal=_refused_role("exposure.query")))):
    form = await _form(request)
    runtime = request.app.state.runtime
    try:
        query = check_form(form, datetime.now(UTC))
        async with runtime.database.transaction() as session:
            outcome = await run_exposure(session, principal, query, client_address=client_address(request.scope))
    except ExposureInvalid as invalid:
        await _log_refusal(request, principal, "exposure.query", invalid_detail(invalid.errors), form)
        return await _page(request, principal, form, errors=invalid.errors, status_code=422)
    if isinstance(outcome, ExposureRefused):
        return await _page(request, principal, form, errors=outcome.errors, status_code=404)
    # The export re-runs the same query: the window as resolved, in local time.
    form.start, form.end = local_input(outcome.start), local_input(outcome.end)
    return await _page(request, principal, form, result=outcome)


@router.post("/exposure/export")
async def exposure_export(request: Request, principal: Principal = Depends(
        console_user(*EXPOSURE_ROLES, on_refusal=_refused_role("exposure.export")))):
    form = await _form(request)
    runtime = request.app.state.runtime
    try:
        query = check_form(form, datetime.now(UTC))
        async with runtime.database.transaction() as session:
            outcome = await run_exposure(session, principal, query, export=True,
                                         client_address=client_address(request.scope))
    except ExposureInvalid as invalid:
        await _log_refusal(request, principal, "exposure.export", invalid_detail(invalid.errors), form)
        return await _page(request, principal, form, errors=invalid.errors, status_code=422)
    if isinstance(outcome, ExposureRefused):
        return await _page(request, principal, form, errors=outcome.errors, status_code=404)
    now = local_text(datetime.now(UTC))
    content = await asyncio.to_thread(exposure_workbook, outcome, exported_by=f"{principal.name} ({principal.username})",
                                      exported_at=now, lang=_lang(request))
    stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M")
    return Response(content, media_type=XLSX, headers={
        "content-disposition": f'attachment; filename="truy-vet-tiep-xuc-{stamp}.xlsx"',
        "cache-control": "no-store"})


@router.get("/access-log")
async def access_log_page(request: Request, page: int = 1, action: str = "", case: str = "", outcome: str = "",
                          principal: Principal = Depends(console_user(*OFFICIALS))):
    runtime = request.app.state.runtime
    page = max(1, min(page, 100_000))
    action = action if action in ACTIONS else ""
    outcome = outcome if outcome in OUTCOMES else ""
    case = " ".join(case.split())[:80]
    async with runtime.database.transaction(readonly=True) as session:
        entries, total = await entries_within(session, principal.jurisdiction, limit=LOG_PAGE,
                                              offset=(page - 1) * LOG_PAGE, action=action or None,
                                              case_reference=case or None, outcome=outcome or None)
    params = "&".join(p for p in (f"action={action}" if action else "", f"outcome={outcome}" if outcome else "",
                                  f"case={quote(case)}" if case else "") if p)
    return request.app.state.templates.render(request, "reporting/access_log.html", {
        "entries": entries, "total": total, "page": page, "pages": max(1, ceil(total / LOG_PAGE)),
        "base_url": "/access-log" + ("?" + params if params else ""), "actions": ACTIONS, "action": action,
        "case": case, "outcomes": OUTCOMES, "outcome": outcome, "refusals": REFUSALS,
        "area": runtime.tree.label(principal.jurisdiction), "local_text": local_text,
        "tree": runtime.tree,
    })


# --- JSON ------------------------------------------------------------------------------

class ExposureIn(BaseModel):
    case_reference: str = Field("", max_length=200)
    reason: str = Field("", max_length=2000)
    venue: str = Field("", max_length=100, description="a venue id or its printed code")
    declaration_id: str = Field("", max_length=100)
    start: str = Field("", max_length=40, description="ISO date-time; without an offset, Vietnam time")
    end: str = Field("", max_length=40)


@api_router.post("/exposure")
async def exposure_api(body: ExposureIn, request: Request,
                       principal: Principal = Depends(require(*EXPOSURE_ROLES,
                                                              on_refusal=_refused_role("exposure.query")))
                       ) -> JSONResponse:
    """Who declared at a venue (or at a declaration's venue) during a window, with contact details.
    Requires a case reference and a reason; logged in the access log, granted or refused."""
    runtime = request.app.state.runtime
    form = ExposureForm(**body.model_dump())
    try:
        query = check_form(form, datetime.now(UTC))
        async with runtime.database.transaction() as session:
            outcome = await run_exposure(session, principal, query, client_address=client_address(request.scope))
    except ExposureInvalid as invalid:
        await _log_refusal(request, principal, "exposure.query", invalid_detail(invalid.errors), form)
        return problem_response(request, 422, PLEASE_CORRECT,
                                errors=[{"field": k, "msgid": v} for k, v in invalid.errors.items()])
    if isinstance(outcome, ExposureRefused):
        return problem_response(request, 404, outcome.message)
    venue = outcome.venue
    return JSONResponse({
        "entry_id": str(outcome.entry_id),
        "venue": {"venue_id": str(venue.venue_id), "code": venue.code, "name": venue.name,
                  "unit_name": venue.unit_name, "address": venue.address, "commune_path": venue.commune_path},
        "start": outcome.start.isoformat(), "end": outcome.end.isoformat(), "total": outcome.total,
        "truncated": outcome.truncated,
        "contacts": [{"declaration_id": str(c.declaration_id), "submitted_at": c.submitted_at.isoformat(),
                      "full_name": c.full_name, "phone": c.phone, "result": c.result, "channel": c.channel,
                      "group_size": c.group_size, "is_index": c.is_index} for c in outcome.contacts],
    }, headers={"cache-control": "no-store"})


class CaseVisitsIn(BaseModel):
    case_reference: str = Field("", max_length=200)
    reason: str = Field("", max_length=2000)
    phone: str = Field("", max_length=40, description="the case's phone, as declared (spaces, +84 allowed)")
    start: str = Field("", max_length=40, description="ISO date-time; default: 14 days before the end")
    end: str = Field("", max_length=40, description="ISO date-time; default: now")


@api_router.post("/exposure/case-visits")
async def case_visits_api(body: CaseVisitsIn, request: Request,
                          principal: Principal = Depends(require(*EXPOSURE_ROLES,
                                                                 on_refusal=_refused_role(CASE_VISITS)))
                          ) -> JSONResponse:
    """Where a case declared (by its phone) during a window, within the caller's area: the
    venues to run the exposure query on. Requires a case reference and a reason; logged in
    the access log (never the phone), granted or refused."""
    runtime = request.app.state.runtime
    try:
        query = check_case_visits(body.case_reference, body.reason, body.phone, body.start, body.end,
                                  datetime.now(UTC))
    except ExposureInvalid as invalid:
        await _log_refusal(request, principal, CASE_VISITS, invalid_detail(invalid.errors),
                           ExposureForm(case_reference=body.case_reference, reason=body.reason))
        return problem_response(request, 422, PLEASE_CORRECT,
                                errors=[{"field": k, "msgid": v} for k, v in invalid.errors.items()])
    async with runtime.database.transaction() as session:
        found = await find_case_visits(session, principal, query, client_address=client_address(request.scope))
    return JSONResponse({
        "entry_id": str(found.entry_id), "start": query.start.isoformat(), "end": query.end.isoformat(),
        "total": len(found.visits), "truncated": found.truncated,
        "visits": [{"declaration_id": str(v.declaration_id), "submitted_at": v.submitted_at.isoformat(),
                    "full_name": v.full_name, "result": v.result, "channel": v.channel,
                    "venue": None if v.venue is None else {
                        "venue_id": str(v.venue.venue_id), "code": v.venue.code, "name": v.venue.name,
                        "unit_name": v.venue.unit_name, "commune_path": v.venue.commune_path}}
                   for v in found.visits],
    }, headers={"cache-control": "no-store"})


@api_router.get("/access-log")
async def access_log_api(request: Request, limit: int = Query(100, ge=1, le=1000),
                         offset: int = Query(0, ge=0, le=1_000_000), action: str = Query("", max_length=60),
                         outcome: str = Query("", max_length=10),
                         principal: Principal = Depends(require(*OFFICIALS))) -> list[dict]:
    """Entries of the access log visible to the caller (its officials and its venues), newest
    first; ``outcome``: ``ok`` or ``refused`` only."""
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        entries, _total = await entries_within(session, principal.jurisdiction, limit=max(1, min(limit, 1000)),
                                               offset=max(0, offset), action=action or None,
                                               outcome=outcome if outcome in OUTCOMES else None)
    return [{"entry_id": str(e.entry_id), "at": e.at.isoformat(), "actor_username": e.actor_username,
             "actor_name": e.actor_name, "actor_role": e.actor_role, "actor_jurisdiction": e.actor_jurisdiction,
             "action": e.action, "outcome": e.outcome, "detail": e.detail, "purpose": e.purpose,
             "case_reference": e.case_reference,
             "reason": e.reason, "scope_path": e.scope_path, "venue_id": str(e.venue_id) if e.venue_id else None,
             "venue_name": e.venue_name, "declaration_id": str(e.declaration_id) if e.declaration_id else None,
             "window_start": e.window_start.isoformat() if e.window_start else None,
             "window_end": e.window_end.isoformat() if e.window_end else None, "row_count": e.row_count,
             "client_address": e.client_address}
            for e in entries]
