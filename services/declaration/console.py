"""The declaration console's home and the screening rule sets (officials; the city publishes)."""
from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from libs.common.auth import OFFICIALS, Principal, Role
from libs.common.console import console_user
from libs.common.ui import N_

from .messages import translate
from .screening import InvalidRuleSet, list_rule_sets, publish_rule_set
from .service import GATE_ROLES, counts_by_venue, venues_visible_to
from .web import BadBody, read_form

router = APIRouter(include_in_schema=False)


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "vi")


@router.get("/")
async def home(request: Request, principal: Principal = Depends(console_user())):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        venues = await venues_visible_to(session, principal)
        counts = await counts_by_venue(session, [v.venue_id for v in venues])
    return request.app.state.templates.render(request, "declaration/home.html", {
        "venues": venues, "counts": counts, "area": runtime.tree.label(principal.jurisdiction),
        "gate": principal.role in GATE_ROLES, "officials": principal.role in OFFICIALS,
        "page_title": translate(N_("Health declaration"), _lang(request)),
    })


async def _rules_page(request: Request, principal: Principal, *, text: str = "", error: str | None = None,
                      status: int = 200, messages=()):  # noqa: ANN001
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await list_rule_sets(session)
    active = next((r for r in rows if r.active), None)
    return request.app.state.templates.render(request, "declaration/rules.html", {
        "rule_sets": rows, "active": active, "active_doc": json.loads(active.rules) if active else None,
        "can_publish": principal.role == Role.CITY_DIC, "text": text or (active.rules if active else ""),
        "error": error, "messages": list(messages),
        "page_title": translate(N_("Screening rules"), _lang(request)),
    }, status_code=status)


@router.get("/rules")
async def rules(request: Request, principal: Principal = Depends(console_user(*OFFICIALS))):
    done = [("success", translate(N_("The new rule set is active: every declaration from now on is screened with it."),
                                  _lang(request)))] if request.query_params.get("done") else []
    return await _rules_page(request, principal, messages=done)


@router.post("/rules")
async def publish_rules(request: Request, principal: Principal = Depends(console_user(Role.CITY_DIC))):
    runtime = request.app.state.runtime
    try:
        form = await read_form(request, 256 * 1024)
    except BadBody as exc:
        return await _rules_page(request, principal, error=translate(exc.message, _lang(request)), status=exc.status)
    text = form.get("rules")
    try:
        async with runtime.database.transaction() as session:
            await publish_rule_set(session, text, by=principal.name or principal.username)
    except InvalidRuleSet as exc:
        message = translate(N_("The rule set was not saved, it is not valid:"), _lang(request)) + f" {exc}"
        return await _rules_page(request, principal, text=text, error=message, status=422)
    return RedirectResponse("/rules?done=1", status_code=303)
