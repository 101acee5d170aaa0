"""The declaration console's home and the screening rule sets (officials read them; a city
health officer proposes a version, a second one approves it)."""
from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from libs.common.auth import OFFICIALS, Principal, Role
from libs.common.console import console_user
from libs.common.menu import menu_roles
from libs.common.ui import N_

from .messages import translate
from .screening import (
    InvalidRuleSet, RuleSetRefused, approve_rule_set, list_rule_sets, may_decide, propose_rule_set, reject_rule_set,
)
from .service import GATE_ROLES, counts_by_venue, venues_visible_to
from .web import BadBody, read_form

router = APIRouter(include_in_schema=False)
DONE = {
    "proposed": N_("The rule set is proposed: it becomes active when another officer of the city health department "
                   "approves it."),
    "approved": N_("The new rule set is active: every declaration from now on is screened with it."),
    "rejected": N_("The proposal is withdrawn or declined: it will not become active."),
}


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "vi")


@router.get("/")
async def home(request: Request, principal: Principal = Depends(console_user(*menu_roles("declaration", "/")))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        venues = await venues_visible_to(session, principal)
        counts = await counts_by_venue(session, [v.venue_id for v in venues])
    return request.app.state.templates.render(request, "declaration/home.html", {
        "venues": venues, "counts": counts, "area": runtime.tree.label(principal.jurisdiction),
        "gate": principal.role in GATE_ROLES, "officials": principal.role in OFFICIALS,
        "subject": principal.role == Role.HEALTH_OFFICER,
        "page_title": translate(N_("Health declaration"), _lang(request)),
    })


async def _rules_page(request: Request, principal: Principal, *, text: str = "", error: str | None = None,
                      status: int = 200, messages=()):  # noqa: ANN001
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await list_rule_sets(session)
    active = next((r for r in rows if r.active), None)
    return request.app.state.templates.render(request, "declaration/rules.html", {
        "rule_sets": rows, "active": active, "active_doc": json.loads(active.rules) if active else None,
        "pending": [r for r in rows if r.state == "pending"],
        "can_decide": may_decide(principal, request.app.state.runtime.tree.root.path),
        "me": principal.account_id, "text": text or (active.rules if active else ""),
        "error": error, "messages": list(messages),
        "page_title": translate(N_("Screening rules"), _lang(request)),
    }, status_code=status)


@router.get("/rules")
async def rules(request: Request, principal: Principal = Depends(console_user(*OFFICIALS))):
    done = DONE.get(request.query_params.get("done", ""))
    return await _rules_page(request, principal, messages=[("success", translate(done, _lang(request)))] if done else [])


@router.post("/rules")
async def propose_rules(request: Request, principal: Principal = Depends(console_user(Role.HEALTH_OFFICER))):
    runtime = request.app.state.runtime
    try:
        form = await read_form(request, 256 * 1024)
    except BadBody as exc:
        return await _rules_page(request, principal, error=translate(exc.message, _lang(request)), status=exc.status)
    text = form.get("rules")
    try:
        async with runtime.database.transaction() as session:
            await propose_rule_set(session, text, by=principal, city_path=runtime.tree.root.path)
    except InvalidRuleSet as exc:
        message = translate(N_("The rule set was not saved, it is not valid:"), _lang(request)) + f" {exc}"
        return await _rules_page(request, principal, text=text, error=message, status=422)
    except RuleSetRefused as exc:
        return await _rules_page(request, principal, text=text, error=translate(exc.message, _lang(request)),
                                 status=exc.status)
    return RedirectResponse("/rules?done=proposed", status_code=303)


async def _decide(request: Request, principal: Principal, version: str, step, done: str):  # noqa: ANN001, ANN202
    runtime = request.app.state.runtime
    try:
        await read_form(request, 4 * 1024)
        async with runtime.database.transaction() as session:
            await step(session, version[:40], by=principal, city_path=runtime.tree.root.path)
    except BadBody as exc:
        return await _rules_page(request, principal, error=translate(exc.message, _lang(request)), status=exc.status)
    except RuleSetRefused as exc:
        return await _rules_page(request, principal, error=translate(exc.message, _lang(request)), status=exc.status)
    return RedirectResponse(f"/rules?done={done}", status_code=303)


@router.post("/rules/{version}/approve")
async def approve_rules(request: Request, version: str, principal: Principal = Depends(console_user(Role.HEALTH_OFFICER))):
    return await _decide(request, principal, version, approve_rule_set, "approved")


@router.post("/rules/{version}/reject")
async def reject_rules(request: Request, version: str, principal: Principal = Depends(console_user(Role.HEALTH_OFFICER))):
    return await _decide(request, principal, version, reject_rule_set, "rejected")
