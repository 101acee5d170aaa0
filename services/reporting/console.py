"""HTML pages of the reporting console: the dashboard of the caller's jurisdiction."""
from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request

from libs.common.auth import Principal, Role
from libs.common.menu import menu_roles
from libs.common.ui import N_

from .service import FUNNEL_STEPS, Dashboard, area_dashboard, child_areas, unit_dashboard, unit_glance
from .web import BadFilter, area_for, official, period_from

router = APIRouter(include_in_schema=False)

STEP_LABELS = {
    "submitted": N_("Registered"), "accepted": N_("Accepted"), "exempt": N_("Exempt"),
    "forwarded": N_("Forwarded to the city"), "issued": N_("Accounts issued"), "live": N_("Live"),
}
AREA_REFUSED = (N_("Outside your jurisdiction"), N_("This area is outside your jurisdiction."))


async def _render(request: Request, board: Dashboard, *, area_options: list, area: str | None, error: str | None,
                  principal: Principal, glance: list | None = None):
    return request.app.state.templates.render(request, "reporting/home.html", {
        "board": board, "glance": glance, "steps": FUNNEL_STEPS,
        "step_labels": STEP_LABELS, "area_options": area_options, "area": area or "", "filter_error": error,
        "start": board.period.start.isoformat(), "end": board.period.end.isoformat(),
        "total": board.totals.funnel["submitted"], "can_report": principal.role == Role.DISTRICT_FOCAL,
        "day_bars": [(d.strftime("%d/%m"), n) for d, n, _f in board.per_day],
        "day_flagged": [f for _d, _n, f in board.per_day], "day_every": max(1, len(board.per_day) // 12),
        "hour_bars": [(f"{h:02d}", n) for h, n in enumerate(board.per_hour)],
        "area_bars": [(r.name, r.declarations) for r in board.rows],
        "venue_bars": [(v.name, v.declarations) for v in board.venues],
        "day_rows": [(d.strftime("%d/%m/%Y"), n, f) for d, n, f in board.per_day],
        "hour_rows": [(f"{h:02d}:00–{h:02d}:59", n) for h, n in enumerate(board.per_hour)],
        "venue_rows": [(v.name, v.unit_name, v.code, v.declarations, v.red, v.burst) for v in board.venues],
    })


@router.get("/")
async def home(request: Request, start: str | None = None, end: str | None = None, area: str | None = None,
               principal: Principal = Depends(official(*menu_roles("reporting", "/")))):
    """The dashboard of the caller's jurisdiction, or of an area below it."""
    runtime = request.app.state.runtime
    try:
        path = area_for(request, principal, area)
    except HTTPException as exc:
        if exc.status_code == 403:
            return request.app.state.templates.render_error(request, 403, *AREA_REFUSED)
        return request.app.state.templates.render_error(request, exc.status_code)
    error = None
    try:
        period = period_from(start, end)
    except BadFilter as exc:
        error, period = exc.detail.split(" / ")[0], period_from(None, None)
    board = await area_dashboard(runtime.database, runtime.tree, path, period)
    tree = runtime.tree
    own = tree.get(principal.jurisdiction)
    options = [(own.path, own.name)] if own else []
    options += [(a.path, a.name) for a in child_areas(tree, principal.jurisdiction) if a.path != principal.jurisdiction]
    return await _render(request, board, area_options=options, area=path, error=error, principal=principal)


@router.get("/unit")
async def unit_home(request: Request, start: str | None = None, end: str | None = None,
                    principal: Principal = Depends(official(*menu_roles("reporting", "/unit")))):
    """A unit administrator's dashboard: declarations at its own venues."""
    runtime = request.app.state.runtime
    error = None
    try:
        period = period_from(start, end)
    except BadFilter as exc:
        error, period = exc.detail.split(" / ")[0], period_from(None, None)
    board = await unit_dashboard(runtime.database, runtime.tree, UUID(principal.unit_id), period)
    async with runtime.database.transaction(readonly=True) as session:
        glance = await unit_glance(session, UUID(principal.unit_id))
    return await _render(request, board, area_options=[], area=None, error=error, principal=principal,
                         glance=glance)
