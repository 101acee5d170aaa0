"""HTML pages of the notification console."""
from datetime import UTC, datetime, timedelta, timezone

from fastapi import APIRouter, Depends, Request

from libs.common.auth import OFFICIALS, Principal
from libs.common.console import console_user

from .service import inbox

router = APIRouter(include_in_schema=False)
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")  # no daylight saving time


def local_time(moment: datetime) -> str:
    """A stored instant (UTC; naive when read back from SQLite) as officials read a clock."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VIETNAM_TIME).strftime("%d/%m/%Y %H:%M")


@router.get("/")
async def home(request: Request, principal: Principal = Depends(console_user(*OFFICIALS))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        notices = await inbox(session, principal)
    return request.app.state.templates.render(request, "notification/home.html", {
        "notices": notices, "area": runtime.tree.label(principal.jurisdiction), "tree": runtime.tree,
        "local_time": local_time,
    })
