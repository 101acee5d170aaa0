"""HTML pages of the reporting console."""
from fastapi import APIRouter, Depends, Request

from libs.common.auth import OFFICIALS, Principal
from libs.common.console import console_user

from .service import registration_counts

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, principal: Principal = Depends(console_user(*OFFICIALS))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        counts = await registration_counts(session, runtime.tree, principal)
    return request.app.state.templates.render(request, "reporting/home.html", {
        "counts": counts, "total": sum(c.registrations for c in counts),
        "area": runtime.tree.label(principal.jurisdiction),
    })
