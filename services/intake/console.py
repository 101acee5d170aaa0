"""HTML pages of the intake console."""
from fastapi import APIRouter, Depends, Request

from libs.common.auth import OFFICIALS, Principal
from libs.common.console import console_user

from .service import UNIT_TYPES, list_registrations

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, principal: Principal = Depends(console_user(*OFFICIALS))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        registrations = await list_registrations(session, principal)
    return request.app.state.templates.render(request, "intake/home.html", {
        "registrations": registrations,
        "unit_types": UNIT_TYPES,
        "area": runtime.tree.label(principal.jurisdiction),
        "tree": runtime.tree,
    })
