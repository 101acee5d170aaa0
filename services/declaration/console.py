"""HTML pages of the declaration console (gate staff, unit administrators, officials)."""
from fastapi import APIRouter, Depends, Request

from libs.common.auth import Principal
from libs.common.console import console_user

from .service import venues_visible_to

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, principal: Principal = Depends(console_user())):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        venues = await venues_visible_to(session, principal)
    return request.app.state.templates.render(request, "declaration/home.html", {
        "venues": venues, "area": runtime.tree.label(principal.jurisdiction),
    })
