"""The alert pages: the live inbox, an alert with the person's contact details, the
acknowledgement, the offices' alert contacts, and the status page of a unit.

The inbox works without JavaScript (a refresh link); with it, ``alerts.js`` asks
``/api/alerts/rows`` for alerts newer than the newest shown and inserts them, so new alerts
appear without reloading. No personal data travels in a URL: alerts are addressed by id.
"""
from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import func, select

from libs.common.auth import UNIT_ROLES, Principal, Role, require
from libs.common.console import console_user

from . import alert_contacts, alerts, webhook_guard
from .alert_models import Alert, AlertAccess, AlertContact
from .web import back, flash, parse_id

router = APIRouter(include_in_schema=False)
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
ALL_ROLES = (*alerts.READER_ROLES, *UNIT_ROLES)


def _after(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(alert: Alert) -> str:
    return alerts.aware(alert.received_at).isoformat()


async def _counts(session, principal: Principal) -> dict[str, int]:  # noqa: ANN001
    rows = await session.execute(select(Alert.status, func.count()).where(alerts.visible(principal))
                                 .group_by(Alert.status))
    return {status: int(count) for status, count in rows.all()}


@router.get("/alerts")
async def inbox(request: Request, status: str = "", principal: Principal = Depends(console_user(*ALL_ROLES))):
    if principal.role in UNIT_ROLES:
        return RedirectResponse("/alerts/unit", status_code=303)
    runtime = request.app.state.runtime
    status = status if status in alerts.STATUSES else ""
    async with runtime.database.transaction(readonly=True) as session:
        items = await alerts.list_alerts(session, principal, status=status or None)
        counts = await _counts(session, principal)
    latest = max((_stamp(a) for a in items), default="")
    return request.app.state.templates.render(request, "notification/alerts.html", {
        "items": items, "status": status, "counts": counts, "latest": latest, "tree": runtime.tree,
        "refresh_ms": runtime.settings.alert_refresh_ms, "messages": flash(request),
        "is_recipient": principal.role in alerts.RECIPIENT_ROLES,
    })


@router.get("/api/alerts/rows", include_in_schema=False)
async def new_rows(request: Request, after: str = "", status: str = "",
                   principal: Principal = Depends(require(*alerts.READER_ROLES))):
    """The inbox rows (HTML) of alerts newer than ``after``, newest first, for alerts.js."""
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        items = await alerts.list_alerts(session, principal, status=status if status in alerts.STATUSES else None,
                                         after=_after(after), limit=50)
        counts = await _counts(session, principal)
    html = ""
    if items:
        fragment = request.app.state.templates.render(request, "notification/alert_rows.html", {
            "items": items, "tree": runtime.tree, "fresh": True})
        html = fragment.body.decode()
    return JSONResponse({"count": len(items), "latest": max((_stamp(a) for a in items), default=after),
                         "html": str(html), "counts": counts}, headers=NO_STORE)


@router.get("/alerts/unit")
async def unit_status(request: Request, principal: Principal = Depends(console_user(*UNIT_ROLES))):
    """The alerts raised at the unit's venues and what became of them (initials only)."""
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        items = await alerts.list_alerts(session, principal, limit=300)
    return request.app.state.templates.render(request, "notification/alerts_unit.html", {
        "items": items, "tree": runtime.tree})


@router.get("/alerts/settings")
async def contacts_page(request: Request, principal: Principal = Depends(console_user(*alert_contacts.EDITOR_ROLES))):
    runtime = request.app.state.runtime
    office = alert_contacts.office_of(principal, runtime.tree)
    contact = None
    if office is not None:
        async with runtime.database.transaction(readonly=True) as session:
            contact = await session.get(AlertContact, office)
    # A webhook saved before the address checks (or while they were off) that would now be refused.
    problem = webhook_guard.stored_problem(contact.webhook_url if contact else None,
                                           allow_private=runtime.settings.webhook_allow_private)
    return request.app.state.templates.render(request, "notification/alert_settings.html", {
        "office": office, "office_label": runtime.tree.label(office) if office else "", "contact": contact,
        "form": {"emails": contact.emails if contact else "", "webhook_url": (contact.webhook_url or "") if contact else ""},
        "error": problem.code if problem else None, "error_detail": problem.detail if problem else "",
        "stored_problem": problem is not None,
        "messages": flash(request)}, headers=NO_STORE)


@router.post("/alerts/settings")
async def save_contacts(request: Request, emails: str = Form(""), webhook_url: str = Form(""),
                        new_secret: str = Form(""),
                        principal: Principal = Depends(console_user(*alert_contacts.EDITOR_ROLES))):
    runtime = request.app.state.runtime
    office = alert_contacts.office_of(principal, runtime.tree)
    if office is None:
        return back("/alerts/settings", error="not_allowed")
    try:
        async with runtime.database.transaction() as session:
            await alert_contacts.save(session, principal, office, emails=emails[:4000], webhook_url=webhook_url[:1000],
                                      new_secret=bool(new_secret),
                                      allow_private=runtime.settings.webhook_allow_private)
    except alert_contacts.ContactRefused as refused:
        async with runtime.database.transaction(readonly=True) as session:
            contact = await session.get(AlertContact, office)
        return request.app.state.templates.render(request, "notification/alert_settings.html", {
            "office": office, "office_label": runtime.tree.label(office), "contact": contact,
            "form": {"emails": emails[:4000], "webhook_url": webhook_url[:1000]},
            "error": refused.code, "error_detail": refused.detail, "messages": []},
            status_code=422, headers=NO_STORE)
    return back("/alerts/settings", done="contacts_saved")


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: str, principal: Principal = Depends(console_user(*ALL_ROLES))):
    runtime = request.app.state.runtime
    ident = parse_id(alert_id)
    async with runtime.database.transaction() as session:
        try:
            alert = await alerts.get_alert(session, principal, ident)
        except alerts.AlertRefused:
            return request.app.state.templates.render_error(request, 404)
        show_person = alerts.sees_person(principal, alert)
        recipient = principal.role in alerts.RECIPIENT_ROLES and principal.covers(alert.commune_path)
        reds = await alerts.declarations_of(session, alert, with_person=recipient) \
            if alert.kind == "burst" or alert.declarations > 1 else []
        if show_person or (recipient and reds):
            session.add(AlertAccess(alert_id=alert.id, account_id=principal.account_id[:64],
                                    account_name=principal.name[:200], role=str(principal.role), action="viewed",
                                    at=datetime.now(UTC)))
        dispatches = await alerts.dispatches_of(session, alert.id) if principal.role not in UNIT_ROLES else []
    return request.app.state.templates.render(request, "notification/alert.html", {
        "alert": alert, "person": alerts.person_of(alert) if show_person else None, "tree": runtime.tree,
        "may_ack": alerts.may_acknowledge(principal, alert), "dispatches": dispatches, "reds": reds,
        "span": (alerts.aware(alert.raised_at), alerts.aware(alert.latest_at or alert.raised_at)),
        "unit_view": principal.role in UNIT_ROLES, "messages": flash(request),
        "list_of": lambda raw: alerts.json_list(raw)}, headers=NO_STORE)


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(request: Request, alert_id: str,
                      principal: Principal = Depends(console_user(*alerts.READER_ROLES))):
    runtime = request.app.state.runtime
    ident = parse_id(alert_id)
    try:
        async with runtime.database.transaction() as session:
            alert = await alerts.acknowledge(session, principal, ident)
            session.add(AlertAccess(alert_id=alert.id, account_id=principal.account_id[:64],
                                    account_name=principal.name[:200], role=str(principal.role),
                                    action="acknowledged", at=datetime.now(UTC)))
    except alerts.AlertRefused as refused:
        if refused.code == "not_found":
            return request.app.state.templates.render_error(request, 404)
        return back(f"/alerts/{ident}", error=refused.code)
    return back(f"/alerts/{ident}", done="alert_acknowledged")
