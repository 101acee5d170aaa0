"""JSON endpoints of the reporting service."""
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from libs.common.auth import OFFICIALS, Principal, require

from .service import registration_counts

router = APIRouter(prefix="/api", tags=["reports"])


class AreaCountOut(BaseModel):
    path: str
    name: str
    registrations: int
    late: int


@router.get("/registrations/counts", response_model=list[AreaCountOut])
async def counts(request: Request, principal: Principal = Depends(require(*OFFICIALS))) -> list:
    """Registrations per area below the caller's node."""
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        rows = await registration_counts(session, runtime.tree, principal)
    return [AreaCountOut(**vars(r)) for r in rows]
