"""The gate console (gate staff and unit administrators, on a phone or a PC with a USB scanner).

One screen per venue: a scan field (a USB scanner types the QR text and Enter into it),
today's counts, and the actions: declare on a visitor's behalf, count an entry, raise a
suspected case. What is scanned decides what happens: a personal QR code (``KB1.``) is
verified (in the browser with WebCrypto when it can, here otherwise) and a valid one
counts an entry; a chip ID card (CCCD) or national personal QR (Decision 1405) opens the
assisted declaration prefilled. Every form carries a CSRF token bound to the session.
"""
from __future__ import annotations

import json
import uuid
from functools import partial
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from libs.common.auth import Principal
from libs.common.console import console_user
from libs.common.ui import N_

from ..batcher import Overloaded, StoreUnavailable
from ..declare import DeclarationRefused, VenueRateLimited, accept
from ..forms import apply_action, declaration_input, form_errors, new_form_state, read_people
from ..casework import read_case
from ..idcards import Reading, read_identity
from ..messages import translate
from ..pages import BUSY, SENT_WITH_OTHER_DETAILS, STATUS, render_form, render_result
from ..places import load_places
from ..schemas import DeclarationIn
from ..screening import SYMPTOMS
from ..service import (
    GATE_ROLES, cases_today, count_today, declared_today, raise_case, record_entries, venue_for_gate,
    venues_visible_to,
)
from ..web import BAD_CSRF, BadBody, local_text, local_text_from_epoch, read_form

router = APIRouter(include_in_schema=False)

DONE = {
    "entry": N_("Entry counted."),
    "case": N_("Suspected case reported: the district health center and the commune are alerted."),
}
SIGNALS = {
    "valid": (N_("VALID"), N_("Green: let the visitor in.")),
    "yellow": (N_("VALID · YELLOW"), N_("Let the visitor in, and remind them to watch their health.")),
    "red": (N_("RED · DO NOT ADMIT"), N_("Suspected case: keep the visitor apart, masked, and report the case.")),
    "expired": (N_("EXPIRED"), N_("This QR code has expired: ask the visitor to declare again.")),
    "forged": (N_("NOT VALID"), N_("Not a genuine health declaration QR code: ask the visitor to declare.")),
    "unreadable": (N_("NOT RECOGNISED"), N_("This is neither a health declaration QR code nor an ID card QR code.")),
    "partial": (N_("ID CARD READ IN PART"),
                N_("Scan the card again; if it still fails, declare for the visitor with what could be read.")),
}
READ_IN_PART = N_("The ID card could be read only in part:")
FILL_THE_REST = N_("The fields that could be read are filled in; ask the visitor for the others.")
DECLARE_WITH_WHAT_WAS_READ = N_("Declare with what could be read")


def gate_user(request: Request, principal: Principal = Depends(console_user(*GATE_ROLES))) -> Principal:
    return principal


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "vi")


async def _venue(request: Request, principal: Principal, venue_id: UUID):  # noqa: ANN202
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        return await venue_for_gate(session, principal, venue_id)


async def _checked_form(request: Request):  # noqa: ANN202
    runtime = request.app.state.runtime
    return await read_form(request, runtime.settings.max_body_bytes)


def _signal(kind: str, lang: str, **detail: str) -> dict:
    title, text = SIGNALS[kind]
    return {"kind": kind, "title": translate(title, lang), "text": translate(text, lang), **detail}


async def _gate_page(request: Request, venue, *, signal: dict | None = None, messages=(), status: int = 200,
                     scan_error: str | None = None, shell: bool = False) -> Response:  # noqa: ANN001
    """The gate screen; ``shell``: the copy its service worker keeps for offline use, without
    any personal data (no suspected cases' names, no signal)."""
    runtime = request.app.state.runtime
    lang = _lang(request)
    async with runtime.database.transaction(readonly=True) as session:
        counts = await count_today(session, venue.venue_id)
        cases = [] if shell else await cases_today(session, venue.venue_id)
    ports = runtime.extras["declaration"]
    return request.app.state.templates.render(request, "declaration/gate.html", {
        "venue": venue, "counts": counts, "cases": cases, "signal": signal, "scan_error": scan_error,
        "keys_json": json.dumps(ports.keys.jwks()), "signals": {k: _signal(k, lang) for k in SIGNALS},
        "messages": [(level, translate(text, lang)) for level, text in messages], "local_text": local_text,
        "nonce": uuid.uuid4(), "page_title": translate(N_("Gate"), lang) + " · " + venue.name, "shell": shell,
        "result_labels": json.dumps({k: translate(v[0], lang) for k, v in STATUS.items()}),
    }, status_code=status)


@router.get("/gate")
async def gate_home(request: Request, principal: Principal = Depends(gate_user)):
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        venues = await venues_visible_to(session, principal)
    if len(venues) == 1:
        return RedirectResponse(f"/gate/{venues[0].venue_id}", status_code=303)
    return request.app.state.templates.render(request, "declaration/gate_home.html", {
        "venues": venues, "page_title": translate(N_("Gate"), _lang(request))})


@router.get("/gate/{venue_id}")
async def gate(request: Request, venue_id: UUID, done: str = "", principal: Principal = Depends(gate_user)):
    venue = await _venue(request, principal, venue_id)
    return await _gate_page(request, venue, messages=[("success", DONE[done])] if done in DONE else [])


@router.post("/gate/{venue_id}/scan")
async def scan(request: Request, venue_id: UUID, principal: Principal = Depends(gate_user)):
    venue = await _venue(request, principal, venue_id)
    try:
        form = await _checked_form(request)
    except BadBody as exc:
        return await _gate_page(request, venue, scan_error=translate(exc.message, _lang(request)), status=exc.status)
    text = form.get("code").strip()
    lang = _lang(request)
    if text.upper().startswith("KB1."):
        found = request.app.state.runtime.extras["declaration"].keys.verify(text)
        kind = "yellow" if found.outcome == "valid" and found.result == "yellow" else found.outcome
        detail = {"until": local_text_from_epoch(found.expires_at), "ref": str(found.declaration_id or "")[:8].upper(),
                  "declaration_id": str(found.declaration_id or "")}
        if found.outcome == "valid":
            async with request.app.state.runtime.database.transaction() as session:
                await record_entries(session, venue, principal, [
                    {"nonce": uuid.uuid4(), "declaration_id": found.declaration_id, "result": found.result}])
        return await _gate_page(request, venue, signal=_signal(kind, lang, **detail))
    reading = read_identity(text)
    if not reading.recognised:
        return await _gate_page(request, venue, signal=_signal("unreadable", lang), status=422)
    if reading.problems and form.get("assist") != "1":
        # Say what is wrong; a second scan often reads the card whole. The button posts the
        # same text back (never in a URL) to open the form with what could be read.
        return await _gate_page(request, venue, status=422, signal=_signal(
            "partial", lang, reasons=_reasons(reading, lang), assist_code=text,
            assist_label=translate(DECLARE_WITH_WHAT_WAS_READ, lang)))
    return await _prefilled_form(request, venue, reading, lang)


def _reasons(reading: Reading, lang: str) -> list[str]:
    return [translate(p.message, lang, **dict(p.params)) for p in reading.problems]


async def _prefilled_form(request: Request, venue, reading: Reading, lang: str) -> Response:  # noqa: ANN001
    """The assisted form with what the card gave; a field that failed stays empty and says why."""
    prefill = reading.prefill
    state = new_form_state(_person_from(prefill))
    state["prefilled_from"] = prefill.source
    errors = {f"p0.{p.field}": translate(p.message, lang, **dict(p.params)) for p in reading.problems if p.field}
    extra = {"gate_venue": venue}
    if reading.problems:
        # The reasons of a field stand at the field (and in the form's error summary); here,
        # only those of the code as a whole (a field missing from the seven, the issue date).
        extra["read_in_part"] = {"title": translate(READ_IN_PART, lang), "rest": translate(FILL_THE_REST, lang),
                                 "reasons": [translate(p.message, lang, **dict(p.params))
                                             for p in reading.problems if p.field is None]}
    earlier = []
    if prefill.id_number:  # already declared here today? (their pass may be on a phone left at home)
        async with request.app.state.runtime.database.transaction(readonly=True) as session:
            earlier = await declared_today(session, venue.venue_id, prefill.id_number)
    extra["declared_today"] = [{"at": local_text(d.submitted_at)[:5], "result": d.result} for d in earlier]
    return render_form(request, venue, state, errors, mode="gate", action=f"/gate/{venue.venue_id}/declare",
                       extra=extra)


def _person_from(prefill) -> dict:  # noqa: ANN001
    person = {"full_name": prefill.full_name or "", "id_type": prefill.id_type or "cccd",
              "id_number": prefill.id_number or "",
              "birth": prefill.birth or "", "gender": prefill.gender or ""}
    if prefill.address:
        province, district, commune, rest = load_places().match_address(prefill.address)
        person.update(province_code=province or "79", district_code=district or "", commune_code=commune or "",
                      street=rest if commune else prefill.address)
    return person


@router.get("/gate/{venue_id}/declare")
async def assisted_form(request: Request, venue_id: UUID, principal: Principal = Depends(gate_user)):
    venue = await _venue(request, principal, venue_id)
    state = new_form_state()
    return render_form(request, venue, state, {}, mode="gate", action=f"/gate/{venue.venue_id}/declare",
                       extra={"gate_venue": venue})


@router.post("/gate/{venue_id}/declare")
async def assisted_declare(request: Request, venue_id: UUID, principal: Principal = Depends(gate_user)):
    venue = await _venue(request, principal, venue_id)
    runtime = request.app.state.runtime
    ports = runtime.extras["declaration"]
    action_url = f"/gate/{venue.venue_id}/declare"
    extra = {"gate_venue": venue}
    try:
        form = await _checked_form(request)
    except BadBody as exc:
        return render_form(request, venue, new_form_state(), {"form": exc.message}, mode="gate", action=action_url,
                           status=exc.status, extra=extra)
    people = read_people(form, ports.max_group)
    state = {"people": people, "key": form.get("key")[:64], "consent": form.get("consent") == "1"}
    action = form.get("action", "submit")
    if action != "submit":
        state["people"] = apply_action(action, people, ports.max_group)
        return render_form(request, venue, state, {}, mode="gate", action=action_url, extra=extra)
    try:
        data = DeclarationIn.model_validate(declaration_input(venue.code, people, form))
    except ValidationError as exc:
        return render_form(request, venue, state, form_errors(exc, _lang(request), people), mode="gate", action=action_url,
                           status=422, extra=extra)
    try:
        answer, admitted = await declare_for_visitor(runtime, venue, principal, data)
    except DeclarationRefused as exc:
        if exc.code == "key_reused":
            state["key"] = new_form_state()["key"]
            return render_form(request, venue, state, {"form": SENT_WITH_OTHER_DETAILS}, mode="gate",
                               action=action_url, status=exc.status, extra=extra)
        page = render_form(request, venue, state, {"form": translate(exc.message, _lang(request), **exc.params)},
                           mode="gate", action=action_url, status=exc.status, extra=extra)
        if isinstance(exc, VenueRateLimited):
            page.headers["retry-after"] = exc.retry_after
        return page
    except (Overloaded, StoreUnavailable):
        return render_form(request, venue, state, {"form": BUSY}, mode="gate", action=action_url, status=503,
                           extra=extra)
    return await render_result(request, answer, back_url=f"/gate/{venue.venue_id}",
                               template="declaration/gate_result.html",
                               extra={"gate_venue": venue, "admitted": admitted})


async def declare_for_visitor(runtime, venue, principal: Principal, data: DeclarationIn) -> tuple[dict, int]:  # noqa: ANN001
    """An assisted declaration (the page, or the offline queue sent later): stored once per
    idempotency key, and each admitted person counted as an entry once (a nonce derived
    from the declaration id). Returns the answer and how many were let in."""
    answer = await accept(runtime.extras["declaration"], data, channel="gate", declared_by=principal.account_id,
                          session_factory=partial(runtime.database.transaction, readonly=True))
    admitted = [{"nonce": uuid.uuid5(uuid.UUID(item["id"]), "entry"), "declaration_id": UUID(item["id"]),
                 "result": item["result"]} for item in answer["declarations"] if item["result"] != "red"]
    if admitted:
        async with runtime.database.transaction() as session:
            await record_entries(session, venue, principal, admitted)
    return answer, len(admitted)


@router.post("/gate/{venue_id}/entries")
async def count_entry(request: Request, venue_id: UUID, principal: Principal = Depends(gate_user)):
    venue = await _venue(request, principal, venue_id)
    try:
        form = await _checked_form(request)
        nonce = UUID(form.get("nonce"))
    except (BadBody, ValueError):
        return await _gate_page(request, venue, messages=[("error", BAD_CSRF)], status=400)
    async with request.app.state.runtime.database.transaction() as session:
        await record_entries(session, venue, principal, [{"nonce": nonce, "result": "manual"}])
    return RedirectResponse(f"/gate/{venue.venue_id}?done=entry", status_code=303)


def _case_page(request: Request, venue, values: dict, errors: dict, status: int = 200) -> Response:  # noqa: ANN001
    lang = _lang(request)
    return request.app.state.templates.render(request, "declaration/gate_case.html", {
        "venue": venue, "values": values, "errors": {k: translate(v, lang) if isinstance(v, str) else v.text(lang)
                                                   for k, v in errors.items()},
        "symptoms": [(code, translate(label, lang)) for code, label in SYMPTOMS], "page_title": translate(N_("Report a suspected case"), lang),
    }, status_code=status)


@router.get("/gate/{venue_id}/case")
async def case_form(request: Request, venue_id: UUID, declaration: str = "",
                    principal: Principal = Depends(gate_user)):
    venue = await _venue(request, principal, venue_id)
    return _case_page(request, venue, {"declaration_id": declaration[:36], "symptoms": []}, {})


@router.post("/gate/{venue_id}/case")
async def report_case(request: Request, venue_id: UUID, principal: Principal = Depends(gate_user)):
    venue = await _venue(request, principal, venue_id)
    try:
        form = await _checked_form(request)
    except BadBody as exc:
        return _case_page(request, venue, {"symptoms": []}, {"form": exc.message}, status=exc.status)
    ports = request.app.state.runtime.extras["declaration"]
    values, errors, parsed = read_case(form, ports.keys)
    if errors:
        return _case_page(request, venue, values, errors, status=422)
    async with request.app.state.runtime.database.transaction() as session:
        await raise_case(session, venue, principal, seal_to=ports.seal_to, **parsed)
    return RedirectResponse(f"/gate/{venue.venue_id}?done=case", status_code=303)
