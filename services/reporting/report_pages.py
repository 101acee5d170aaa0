"""Pages of the deployment reports: the list with each report's state, the request form
(district focal point), and the downloads (the district its own, the city all)."""
from __future__ import annotations

from datetime import UTC, timedelta
from uuid import UUID

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from libs.common.auth import Forbidden, Principal, Role, require
from libs.common.ui import N_

from .aggregates import VIETNAM
from .report_files import COLUMNS
from .reports import report_file, reports_within, request_report
from .service import today
from .web import BadFilter, check_csrf, official, period_from

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["reports"])

READERS = (Role.CITY_DIC, Role.DISTRICT_FOCAL)
MEDIA = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "pdf": "application/pdf"}
STATUS = {"pending": ("pending", N_("Waiting")), "running": ("pending", N_("Being generated")),
          "done": ("green", N_("Ready")), "failed": ("red", N_("Failed"))}
DONE = {"requested": ("Đã yêu cầu lập báo cáo. Báo cáo sẽ xong sau vài giây; trang này tự tải lại.",
                      "The report was requested. It is generated in a few seconds; this page refreshes by itself.")}


def _when(moment) -> str:  # noqa: ANN001
    """A stored naive-UTC time as Ho Chi Minh City clock time."""
    return (moment.replace(tzinfo=UTC).astimezone(VIETNAM)).strftime("%d/%m/%Y %H:%M") if moment else "—"


def _district_of(principal: Principal, request: Request) -> str:
    node = request.app.state.runtime.tree.get(principal.jurisdiction)
    if node is None or node.depth != 1:
        raise Forbidden("Chỉ đầu mối quận/huyện lập báo cáo triển khai / Only a district focal point makes reports")
    return node.path


async def _list(request: Request, principal: Principal, *, error: str | None = None, start: str = "",
                end: str = "", status_code: int = 200):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        items = await reports_within(session, principal.jurisdiction)
    tree = runtime.tree
    done = DONE.get(request.query_params.get("done", ""))
    done = done and done[1 if getattr(request.state, "lang", "vi") == "en" else 0]
    return request.app.state.templates.render(request, "reporting/reports.html", {
        "items": items, "status": STATUS, "area_name": lambda p: tree.get(p).name if tree.get(p) else p,
        "can_request": principal.role == Role.DISTRICT_FOCAL, "error": error,
        "start": start or (today() - timedelta(days=6)).isoformat(), "end": end or today().isoformat(),
        "waiting": any(i.status in ("pending", "running") for i in items), "columns": COLUMNS,
        "messages": [("success", done)] if done else [], "when": _when,
    }, status_code=status_code)


@router.get("/reports")
async def list_reports(request: Request, principal: Principal = Depends(official(*READERS))):
    """Deployment reports of the caller's district (the city: of every district)."""
    return await _list(request, principal)


@router.post("/reports")
async def ask_report(request: Request, start: str = Form(""), end: str = Form(""), csrf_token: str = Form(""),
                     principal: Principal = Depends(official(Role.DISTRICT_FOCAL))):
    """A district focal point asks for the report of a period, now."""
    check_csrf(request, principal, csrf_token)
    district = _district_of(principal, request)
    try:
        period = period_from(start, end, default_days=7)
    except BadFilter as exc:
        return await _list(request, principal, error=exc.detail.split(" / ")[0], start=start, end=end,
                           status_code=400)
    async with request.app.state.runtime.database.transaction() as session:
        await request_report(session, district, period, by_name=principal.name)
    return RedirectResponse("/reports?done=requested", status_code=303)


@router.get("/reports/{report_id}.{kind}")
async def download(request: Request, report_id: str, kind: str,
                   principal: Principal = Depends(require(*READERS))) -> Response:
    """The .xlsx or PDF of a report (the district's own; the city: any)."""
    if kind not in MEDIA:
        raise HTTPException(404)
    try:
        wanted = UUID(report_id)
    except ValueError:
        raise HTTPException(404) from None
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        found = await report_file(session, wanted, kind)
    if found is None:
        raise HTTPException(404, "Không tìm thấy báo cáo / No such report")
    district, status, content = found
    if not principal.covers(district):
        raise Forbidden("Báo cáo của quận/huyện khác / Another district's report")
    if status != "done" or content is None:
        raise HTTPException(409, "Báo cáo đang được lập, hãy thử lại sau ít giây / The report is not ready yet")
    filename = f"bao-cao-trien-khai-{district.replace('/', '-')}-{wanted.hex[:8]}.{kind}"
    return Response(content, media_type=MEDIA[kind], headers={
        "content-disposition": f'attachment; filename="{filename}"', "cache-control": "private, no-store"})


@api_router.get("/reports")
async def api_reports(request: Request, principal: Principal = Depends(require(*READERS))) -> list[dict]:
    """Deployment reports within the caller's jurisdiction, newest first."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        items = await reports_within(session, principal.jurisdiction)
    return [{"report_id": str(i.report_id), "district_path": i.district_path, "period_start": i.period_start.isoformat(),
             "period_end": i.period_end.isoformat(), "trigger": i.trigger, "status": i.status,
             "generated_at": i.generated_at.isoformat() + "Z" if i.generated_at else None, "summary": i.summary,
             "xlsx_path": f"/reports/{i.report_id}.xlsx", "pdf_path": f"/reports/{i.report_id}.pdf"} for i in items]
