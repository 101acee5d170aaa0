"""JSON endpoints of the alerts (no personal data): the caller's alerts, newest first."""
from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from libs.common.auth import UNIT_ROLES, Principal, require

from . import alerts

router = APIRouter(prefix="/api", tags=["alerts"])


class AlertOut(BaseModel):
    id: UUID
    source: str
    source_id: UUID
    status: str
    venue_id: UUID
    venue_code: str
    venue_name: str
    unit_name: str
    commune_path: str
    district_path: str
    raised_at: datetime
    received_at: datetime
    escalated_at: datetime | None
    acknowledged_at: datetime | None
    kind: str  # single | burst (the unusual burst of a venue)
    declarations: int  # red declarations counted in the alert
    latest_at: datetime | None  # the latest of them


def _aware(moment: datetime | None) -> datetime | None:
    return alerts.aware(moment)


@router.get("/alerts", response_model=list[AlertOut])
async def list_alerts(request: Request, status: str | None = Query(None, max_length=20),
                      after: datetime | None = None, limit: int = Query(100, ge=1, le=500),
                      principal: Principal = Depends(require(*alerts.READER_ROLES, *UNIT_ROLES))) -> list[AlertOut]:
    """Alerts the caller may see; ``after`` (ISO time) gives only those received later."""
    if status is not None and status not in alerts.STATUSES:
        raise HTTPException(422, "Trạng thái không hợp lệ / Unknown status (new, escalated, acknowledged)")
    if after is not None and after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        items = await alerts.list_alerts(session, principal, status=status, after=after, limit=limit)
    return [AlertOut(id=a.id, source=a.source, source_id=a.source_id, status=a.status, venue_id=a.venue_id,
                     venue_code=a.venue_code, venue_name=a.venue_name, unit_name=a.unit_name,
                     commune_path=a.commune_path, district_path=a.district_path, raised_at=_aware(a.raised_at),
                     received_at=_aware(a.received_at), escalated_at=_aware(a.escalated_at),
                     acknowledged_at=_aware(a.acknowledged_at), kind=a.kind, declarations=a.declarations,
                     latest_at=_aware(a.latest_at or a.raised_at)) for a in items]
