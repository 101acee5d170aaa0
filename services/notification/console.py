"""HTML pages of the notification console."""
from fastapi import APIRouter, Depends, Request

from libs.common.auth import OFFICIALS, Principal
from libs.common.console import console_user

from .service import inbox

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, principal: Principal = Depends(console_user(*OFFICIALS))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        notices = await inbox(session, principal)
    return request.app.state.templates.render(request, "notification/home.html", {
        "notices": notices, "area": runtime.tree.label(principal.jurisdiction), "tree": runtime.tree,
    })
