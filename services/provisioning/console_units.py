"""Units, their accounts and venues: lists by jurisdiction, account and venue actions, staff.

A unit administrator only ever reaches its own unit (any other id answers 404, as if it
did not exist); officials reach the units of their jurisdiction.
"""
from __future__ import annotations

import segno
from fastapi import APIRouter, Depends, Form, HTTPException, Request

from libs.common.auth import Principal, Role
from libs.common.console import console_user
from libs.common.ratelimit import client_address

from . import access, accounts, audit, venues
from .issuing import IssueRefused
from .models import Unit, Venue
from .posters import venue_url
from .web import back, district_of, flash, page_number, pages, parse_id

router = APIRouter(include_in_schema=False)
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


@router.get("/units")
async def unit_list(request: Request, q: str | None = None, area: str | None = None, page: str | None = None,
                    principal: Principal = Depends(console_user())):
    """Units of the caller's area (a unit's own accounts: their unit only)."""
    runtime = request.app.state.runtime
    tree = runtime.tree
    chosen = area if area and tree.get(area) and principal.covers(area) else None
    number = page_number(page)
    async with runtime.database.transaction(readonly=True) as session:
        rows, total = await venues.units_page(session, principal, search=q or "", area=chosen, page=number)
    areas = [u for u in tree.within(principal.jurisdiction) if u.depth >= 1][:400]
    top = min((u.depth for u in areas), default=0)
    area_options = [(u.path, ("— " * (u.depth - top)) + u.name) for u in areas]
    return request.app.state.templates.render(request, "provisioning/units.html", {
        "units": rows, "total": total, "page": number, "pages": pages(total, venues.PAGE_SIZE), "q": (q or "")[:100],
        "chosen": chosen or "", "area_options": area_options, "tree": tree, "messages": flash(request),
        "area": tree.label(principal.jurisdiction),
        "zip_area": chosen or (principal.jurisdiction if tree.get(principal.jurisdiction) and
                               tree.get(principal.jurisdiction).depth >= 2 else None),
    })


async def _unit_or_404(session, principal: Principal, unit_id: str) -> Unit:  # noqa: ANN001
    unit = await venues.get_unit(session, principal, parse_id(unit_id))
    if unit is None:
        raise HTTPException(404)
    return unit


@router.get("/units/{unit_id}")
async def unit_page(request: Request, unit_id: str, principal: Principal = Depends(console_user())):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        unit = await _unit_or_404(session, principal, unit_id)
        unit_venues = await venues.venues_of(session, unit.id)
        unit_accounts = await accounts.accounts_of_unit(session, unit.id)
        history = await audit.history(session, unit.id) if principal.role != Role.GATE_STAFF else []
    if principal.role == Role.GATE_STAFF:
        unit_accounts = [a for a in unit_accounts if str(a.id) == principal.account_id]
    return request.app.state.templates.render(request, "provisioning/unit.html", {
        "unit": unit, "venues": unit_venues, "accounts": unit_accounts, "history": history,
        "area": runtime.tree.label(unit.commune_path), "messages": flash(request),
        "can_venues": access.may_manage_venues(principal, unit.id, unit.commune_path),
        "can_staff": access.may_manage_staff(principal, unit.id, unit.commune_path),
        "may_manage": lambda a: str(a.id) != principal.account_id and access.may_manage_account(
            principal, a.role, a.unit_id, a.jurisdiction),
        "show_contact": principal.role != Role.GATE_STAFF,
        "declaration_base": runtime.settings.declaration_base(),
    })


# --- accounts -----------------------------------------------------------------------------

async def _account_action(request: Request, principal: Principal, account_id: str, action: str,
                          confirm: str = "yes"):  # noqa: ANN202
    runtime = request.app.state.runtime
    shown = None
    async with runtime.database.transaction(readonly=True) as session:
        account = await accounts.get_account(session, principal, parse_id(account_id))
    if account is None or account.unit_id is None:
        raise HTTPException(404)
    target = f"/units/{account.unit_id}"
    if confirm != "yes":
        return back(target, error="confirm_needed")
    try:
        async with runtime.database.transaction() as session:
            account = await accounts.get_account(session, principal, account.id)
            if account is None:
                raise HTTPException(404)
            if action == "reset":
                shown = await accounts.reset_password(session, runtime.settings, principal, account,
                                                      district_of(runtime.tree, account.jurisdiction),
                                                      address=client_address(request.scope))
            else:
                await accounts.set_disabled(session, principal, account, action == "disable",
                                            token_ttl=runtime.settings.token_ttl_seconds,
                                            address=client_address(request.scope))
    except (accounts.AccountActionRefused, IssueRefused) as exc:
        return back(target, error=exc.code)
    if shown is not None:
        return request.app.state.templates.render(request, "provisioning/password_once.html", {
            "account": shown.account, "password": shown.password, "unit_url": target, "reset": True,
        }, headers=NO_STORE)
    return back(target, done={"reset": "reset_done", "disable": "disabled_done", "enable": "enabled_done"}[action])


@router.post("/accounts/{account_id}/reset")
async def reset_account(request: Request, account_id: str, confirm: str = Form(""),
                        principal: Principal = Depends(console_user())):
    return await _account_action(request, principal, account_id, "reset", confirm)


@router.post("/accounts/{account_id}/disable")
async def disable_account(request: Request, account_id: str, confirm: str = Form(""),
                          principal: Principal = Depends(console_user())):
    return await _account_action(request, principal, account_id, "disable", confirm)


@router.post("/accounts/{account_id}/enable")
async def enable_account(request: Request, account_id: str, principal: Principal = Depends(console_user())):
    return await _account_action(request, principal, account_id, "enable")


@router.post("/units/{unit_id}/staff")
async def create_staff(request: Request, unit_id: str, name: str = Form(""),
                       principal: Principal = Depends(console_user(*access.STAFF_MANAGERS))):
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            unit = await _unit_or_404(session, principal, unit_id)
            created = await accounts.create_gate_staff(session, runtime.settings, principal, unit, name[:300])
    except accounts.AccountActionRefused as exc:
        return back(f"/units/{unit_id}", error=exc.code)
    return request.app.state.templates.render(request, "provisioning/password_once.html", {
        "account": created.account, "password": created.password, "unit_url": f"/units/{unit_id}", "reset": False,
    }, headers=NO_STORE)


# --- venues -------------------------------------------------------------------------------

async def _venue_or_404(session, principal: Principal, venue_id: str) -> tuple[Unit, Venue]:  # noqa: ANN001
    venue = await venues.get_venue(session, principal, parse_id(venue_id))
    if venue is None:
        raise HTTPException(404)
    unit = await session.get(Unit, venue.unit_id)
    if unit is None:
        raise HTTPException(404)
    return unit, venue


@router.get("/venues/{venue_id}")
async def venue_page(request: Request, venue_id: str, principal: Principal = Depends(console_user())):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        unit, venue = await _venue_or_404(session, principal, venue_id)
    url = venue_url(runtime.settings.declaration_base(), venue.code)
    return request.app.state.templates.render(request, "provisioning/venue.html", {
        "unit": unit, "venue": venue, "url": url,
        "qr": segno.make(url, error="m").svg_data_uri(scale=6, border=2) if venue.active else None,
        "area": runtime.tree.label(venue.commune_path), "messages": flash(request),
        "can_manage": access.may_manage_venues(principal, unit.id, unit.commune_path),
    })


@router.post("/units/{unit_id}/venues")
async def add_venue(request: Request, unit_id: str, name: str = Form(""), address: str = Form(""),
                    principal: Principal = Depends(console_user(*access.VENUE_MANAGERS))):
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            unit = await _unit_or_404(session, principal, unit_id)
            await venues.add_venue(session, principal, unit, name[:300], address[:400])
    except venues.VenueActionRefused as exc:
        return back(f"/units/{unit_id}", error=exc.code)
    return back(f"/units/{unit_id}", done="venue_added")


@router.post("/venues/{venue_id}/{action}")
async def venue_action(request: Request, venue_id: str, action: str, name: str = Form(""), address: str = Form(""),
                       reason: str = Form(""), confirm: str = Form(""),
                       principal: Principal = Depends(console_user(*access.VENUE_MANAGERS))):
    if action not in ("rename", "disable", "enable", "rotate"):
        raise HTTPException(404)
    runtime = request.app.state.runtime
    target = f"/venues/{venue_id}"
    if action in ("disable", "rotate") and confirm != "yes":
        return back(target, error="confirm_needed")
    try:
        async with runtime.database.transaction() as session:
            unit, venue = await _venue_or_404(session, principal, venue_id)
            if action == "rename":
                await venues.rename_venue(session, principal, unit, venue, name[:300], address[:400])
            elif action == "rotate":
                await venues.rotate_code(session, principal, unit, venue)
            else:
                await venues.set_venue_active(session, principal, unit, venue, action == "enable", reason[:400])
    except venues.VenueActionRefused as exc:
        return back(target, error=exc.code)
    return back(target, done={"rename": "venue_renamed", "disable": "venue_disabled", "enable": "venue_enabled",
                              "rotate": "code_rotated"}[action])


@router.get("/posters")
async def posters_page(request: Request, principal: Principal = Depends(console_user())):
    """The e-mail's poster link: a unit's own page with its venues to print; officials get their units."""
    own = access.own_unit(principal)
    if own is not None:
        async with request.app.state.runtime.database.transaction(readonly=True) as session:
            found = await venues.get_unit(session, principal, own)
        if found is not None:
            return await unit_page(request, str(own), principal=principal)
    return await unit_list(request, principal=principal)
