"""JSON endpoints of the notification service."""
from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from libs.common.auth import OFFICIALS, Principal, require

from .service import inbox

router = APIRouter(prefix="/api", tags=["inbox"])


class NoticeOut(BaseModel):
    id: UUID
    recipient_path: str
    kind: str
    subject: str
    reference: str | None
    created_at: datetime
    read_at: datetime | None


@router.get("/notices", response_model=list[NoticeOut])
async def notices(request: Request, principal: Principal = Depends(require(*OFFICIALS))) -> list:
    """The caller's inbox (its office and the offices below it)."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await inbox(session, principal)
    return [NoticeOut.model_validate(n, from_attributes=True) for n in rows]
