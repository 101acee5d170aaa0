"""JSON endpoints of the reporting service (the dashboards' numbers)."""
from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from libs.common.auth import OFFICIALS, Principal, Role, require

from .service import Dashboard, area_dashboard, registration_counts, unit_dashboard
from .web import area_for, period_from

router = APIRouter(prefix="/api", tags=["reports"])


class AreaCountOut(BaseModel):
    path: str
    name: str
    registrations: int
    late: int


class AreaOut(BaseModel):
    path: str
    name: str
    funnel: dict[str, int]
    declarations: int
    by_result: dict[str, int]
    flagged: int
    alerts: int
    acknowledged: int


class DayOut(BaseModel):
    day: str
    declarations: int
    flagged: int


class AlertsOut(BaseModel):
    raised: int
    acknowledged: int
    escalated: int
    open: int
    median_minutes: float | None
    p90_minutes: float | None


class VenueOut(BaseModel):
    venue_id: UUID
    code: str
    name: str
    unit_name: str
    commune_path: str
    declarations: int
    red: int
    burst: bool  # an "unusual burst" of red declarations was raised as one alert here in the period


class DashboardOut(BaseModel):
    scope: str
    label: str
    start: str
    end: str
    totals: AreaOut
    rows: list[AreaOut]
    per_day: list[DayOut]
    per_hour: list[int]
    alerts: AlertsOut
    venues: list[VenueOut]


def _out(board: Dashboard) -> DashboardOut:
    return DashboardOut(
        scope=board.scope, label=board.label, start=board.period.start.isoformat(),
        end=board.period.end.isoformat(), totals=AreaOut(**vars(board.totals)),
        rows=[AreaOut(**vars(r)) for r in board.rows],
        per_day=[DayOut(day=d.isoformat(), declarations=n, flagged=f) for d, n, f in board.per_day],
        per_hour=board.per_hour, alerts=AlertsOut(**vars(board.alerts)),
        venues=[VenueOut(**vars(v)) for v in board.venues])


@router.get("/registrations/counts", response_model=list[AreaCountOut])
async def counts(request: Request, principal: Principal = Depends(require(*OFFICIALS))) -> list:
    """Registrations per area below the caller's node."""
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        rows = await registration_counts(session, runtime.tree, principal)
    return [AreaCountOut(**vars(r)) for r in rows]


@router.get("/dashboard", response_model=DashboardOut)
async def dashboard(request: Request, start: str | None = None, end: str | None = None, area: str | None = None,
                    principal: Principal = Depends(require(*OFFICIALS))) -> DashboardOut:
    """The dashboard of the caller's jurisdiction (or of ``area`` below it) for the period
    ``start``..``end`` (local days, YYYY-MM-DD, both included; the last 14 days by default)."""
    runtime = request.app.state.runtime
    path = area_for(request, principal, area)
    period = period_from(start, end)
    return _out(await area_dashboard(runtime.database, runtime.tree, path, period))


@router.get("/unit/dashboard", response_model=DashboardOut)
async def unit_dashboard_api(request: Request, start: str | None = None, end: str | None = None,
                             principal: Principal = Depends(require(Role.UNIT_ADMIN))) -> DashboardOut:
    """A unit administrator's dashboard: its own venues."""
    runtime = request.app.state.runtime
    period = period_from(start, end)
    return _out(await unit_dashboard(runtime.database, runtime.tree, UUID(principal.unit_id), period))
