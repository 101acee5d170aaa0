"""HTML pages of the notification console: the inbox, and the way into the Support Channel."""
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from libs.common.auth import UNIT_ROLES, Principal, Role

from libs.common.console import console_user
from libs.common.menu import menu_roles

from . import alerts, support
from .alert_models import Alert
from .service import inbox
from .web import flash, local_time

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request,
               principal: Principal = Depends(console_user(*menu_roles("notification", "/")))):
    # Unit roles have no inbox here; their page is /alerts/unit (the alerts of their venues),
    # where the shared menu's "Thông báo" link takes them.
    if principal.role in UNIT_ROLES:
        return RedirectResponse("/alerts/unit", status_code=303)
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        notices = await inbox(session, principal)
        open_alerts = (await session.execute(select(func.count()).select_from(Alert).where(
            alerts.visible(principal), Alert.status != "acknowledged"))).scalar_one()
        unread = await support.total_unread(session, principal)
        waiting = 0
        if principal.role == Role.DISTRICT_FOCAL:
            waiting = sum(1 for d in await support.credentials_of(session, principal.jurisdiction)
                          if d.status in support.WAITING)
    return request.app.state.templates.render(request, "notification/home.html", {
        "notices": notices, "area": runtime.tree.label(principal.jurisdiction), "tree": runtime.tree,
        "local_time": local_time, "channel": principal.role in support.CHANNEL_ROLES, "unread": unread,
        "waiting": waiting, "messages": flash(request), "open_alerts": open_alerts,
    })
