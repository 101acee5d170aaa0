"""Pages for units and the public: each district's information page (circular 1.1), the
registration form, the list template, and a unit's status page."""
from __future__ import annotations

import asyncio
import re
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from libs.common.adminunits import AdminUnit

from .contacts import district_contacts
from .excel.template import build_template
from .routing import COMMUNE, DISTRICT, EXEMPTIONS, UNIT_TYPES, district_by_code
from .service import find_by_reference_and_phone, find_by_token, register_units
from .registration.spam import HONEYPOT_FIELD, RegistrationLimited, client_address, screen
from .stages import headline, stage, steps
from .text import LOCAL_TZ, normalize_phone, now_utc
from .validation import BAD_FORM_VENUES, FIELDS, validate_unit
from .web import lang_of, render, runtime_of, with_done


def public_page(request: Request, template: str, context: dict, status_code: int = 200):  # noqa: ANN201
    return render(request, template, context, status_code, public=True)

router = APIRouter(include_in_schema=False)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REFERENCE = re.compile(r"^[A-Z]{2}\d{6}-[0-9A-Z]{6}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,40}$")
FORM_FIELDS = ("unit_name", "unit_type", "address", "commune", "tax_code", "contact_name", "contact_position",
               "contact_phone", "contact_email", "venue_count", "notes")
PRIVATE = {"cache-control": "no-store", "x-robots-tag": "noindex", "referrer-policy": "no-referrer"}


def _district(request: Request, code: str) -> AdminUnit:
    district = district_by_code(runtime_of(request).tree, code) if code.isdigit() else None
    if district is None:
        raise HTTPException(404)
    return district


def _deadline_info(request: Request) -> dict:
    deadline = runtime_of(request).settings.campaign_deadline
    if deadline is None:
        return {"deadline": None, "days_left": None}
    today = now_utc().astimezone(LOCAL_TZ).date()
    return {"deadline": deadline, "days_left": (deadline - today).days}


@router.get("/d")
async def districts(request: Request):
    tree = runtime_of(request).tree
    return public_page(request, "intake/districts.html", {"districts": [d for d in tree.root.children if d.children]})


@router.get("/d/{code}")
async def district_page(request: Request, code: str):
    """What the system is, who registers where, the form, the focal points, the answer, the deadline."""
    runtime = runtime_of(request)
    district = _district(request, code)
    settings = runtime.settings
    return public_page(request, "intake/district.html", {
        "district": district,
        "contacts": district_contacts(
            district, list_address=settings.inbound_address(district.code) if settings.receives_mail else "",
            file=settings.contacts_file),
        "district_types": [t for t in UNIT_TYPES.values() if t.receiver == DISTRICT],
        "commune_types": [t for t in UNIT_TYPES.values() if t.receiver == COMMUNE],
        "exemptions": list(EXEMPTIONS.values()),
        "list_address": settings.inbound_address(district.code) if settings.receives_mail else None,
        **_deadline_info(request),
    })


def _form_context(request: Request, district: AdminUnit, values: dict, errors: dict) -> dict:
    lang = lang_of(request)
    return {
        "district": district, "values": values, "errors": {k: v.text(lang) for k, v in errors.items()},
        "fields": FIELDS,
        "type_options": [(t.code, t.label(lang)) for t in UNIT_TYPES.values()],
        "commune_options": [(c.code, c.name) for c in district.children],
        "max_venues": runtime_of(request).settings.max_form_venues, "honeypot": HONEYPOT_FIELD,
        **_deadline_info(request),
    }


@router.get("/d/{code}/register")
async def register_form(request: Request, code: str):
    district = _district(request, code)
    values = {"venue_count": "1"}
    commune = request.query_params.get("commune", "")
    if any(c.code == commune for c in district.children):
        values["commune"] = commune
    return public_page(request, "intake/register.html", _form_context(request, district, values, {}))


@router.post("/d/{code}/register")
async def register(request: Request, code: str):
    runtime = runtime_of(request)
    district = _district(request, code)
    settings = runtime.settings
    form = await request.form()
    values = {name: str(form.get(name, ""))[:2000] for name in FORM_FIELDS}
    details, errors = validate_unit(values, runtime.tree, district=district)
    if details is not None and details.venue_count > settings.max_form_venues:
        details, errors = None, {"venue_count": BAD_FORM_VENUES.format(max=settings.max_form_venues)}
    if details is None:
        return public_page(request, "intake/register.html", _form_context(request, district, values, errors),
                      status_code=422)
    # The hidden field filled: answered as any registration, kept and flagged (spam.py).
    honeypot = bool(str(form.get(HONEYPOT_FIELD, "")).strip())
    address = client_address(request)
    try:
        async with runtime.database.transaction() as session:
            reasons = await screen(session, settings, details, client_address=address, honeypot=honeypot)
            [registration] = await register_units(session, [details], deadline=settings.campaign_deadline,
                                                  client_address=address, spam_reasons=reasons)
    except RegistrationLimited as refused:
        context = _form_context(request, district, values, {})
        context["refusal"] = refused.msg.text(lang_of(request))
        response = public_page(request, "intake/register.html", context, status_code=429)
        response.headers["retry-after"] = "3600"
        return response
    return RedirectResponse(with_done(f"/status/{registration.reference}/{registration.status_token}", "registered"),
                            status_code=303)


@router.get("/d/{code}/mau-danh-sach.xlsx")
async def template(request: Request, code: str):
    runtime = runtime_of(request)
    district = _district(request, code)
    settings = runtime.settings
    lang = "en" if request.query_params.get("lang") == "en" else "vi"
    cache: dict = runtime.extras.setdefault("intake.templates", {})
    key = (district.path, lang, settings.campaign_deadline)
    content = cache.get(key)
    if content is None:
        base = settings.service_urls.get("intake", "").rstrip("/")
        content = await asyncio.to_thread(
            build_template, district, lang=lang, max_rows=settings.max_import_rows, deadline=settings.campaign_deadline,
            inbound_address=settings.inbound_address(district.code) if settings.receives_mail else None,
            form_url=f"{base}/d/{district.code}/register")
        cache[key] = content
    filename = f"mau-danh-sach-{district.code}.xlsx"
    return Response(content, media_type=XLSX, headers={
        "content-disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"})


@router.get("/status")
async def status_lookup_form(request: Request):
    return public_page(request, "intake/status_lookup.html", {"values": {}, "error": None}, )


@router.post("/status")
async def status_lookup(request: Request):
    runtime = runtime_of(request)
    form = await request.form()
    reference = str(form.get("reference", "")).strip().upper()[:20]
    phone = normalize_phone(str(form.get("phone", ""))[:30]) or ""
    registration = None
    if REFERENCE.match(reference) and phone:
        async with runtime.database.transaction(readonly=True) as session:
            registration = await find_by_reference_and_phone(session, reference, phone)
    if registration is None:
        return public_page(request, "intake/status_lookup.html", {
            "values": {"reference": reference}, "error": True}, status_code=404)
    return RedirectResponse(f"/status/{registration.reference}/{registration.status_token}", status_code=303)


@router.get("/status/{reference}/{token}")
async def status_page(request: Request, reference: str, token: str):
    runtime = runtime_of(request)
    registration = None
    if REFERENCE.match(reference.upper()) and TOKEN.match(token):
        async with runtime.database.transaction(readonly=True) as session:
            registration = await find_by_token(session, reference, token)
    if registration is None:
        raise HTTPException(404)
    title, explanation, tone = headline(registration)
    district = runtime.tree.get(registration.district_path)
    response = public_page(request, "intake/status.html", {
        "r": registration, "title": title, "explanation": explanation, "tone": tone, "stage": stage(registration),
        "steps": steps(registration), "district": district,
        "commune": runtime.tree.get(registration.commune_path),
    })
    response.headers.update(PRIVATE)
    return response
