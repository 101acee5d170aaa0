"""The sign-in history page of the city and the districts, and its .xlsx export.

The city DIC reads every account's events (and the attempts with usernames that name no
account); a district focal point reads those of the accounts of its district only. The
jurisdiction filter is part of every query (signins.jurisdiction_scope); the area filter
only narrows it. Both answers are ``no-store``: they name officials and addresses.
"""
from __future__ import annotations

import io
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Font

from libs.common.auth import Principal
from libs.common.console import console_user
from libs.common.text import spreadsheet_cell
from libs.common.ui.roles import role_label

from ..web import VIETNAM_TIME, lang_of, local_time, page_number, pages
from . import service as signins

router = APIRouter(include_in_schema=False)
NO_STORE = {"cache-control": "private, no-store"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LABELS = "provisioning/_signin_labels.html"


def _filters(request: Request, principal: Principal) -> signins.Filters:
    params = request.query_params
    return signins.Filters.parse(principal, start=params.get("from"), end=params.get("to"),
                                 outcome=params.get("outcome"), event=params.get("event"),
                                 username=(params.get("q") or "")[:80], area=params.get("area"))


def _query_string(filters: signins.Filters) -> str:
    from urllib.parse import urlencode

    query = filters.query()
    return "?" + urlencode(query) if query else ""


def _labels(request: Request):  # noqa: ANN202
    return request.app.state.templates.env_for(lang_of(request)).get_template(LABELS).module


@router.get("/signins")
async def signin_history(request: Request, principal: Principal = Depends(console_user(*signins.VIEWERS))):
    runtime = request.app.state.runtime
    tree = runtime.tree
    filters = _filters(request, principal)
    number = page_number(request.query_params.get("page"))
    async with runtime.database.transaction(readonly=True) as session:
        rows, total = await signins.history_page(session, principal, filters, page=number)
    labels = _labels(request)
    areas = [u for u in tree.within(principal.jurisdiction) if u.depth >= 1][:400]
    top = min((u.depth for u in areas), default=0)
    return request.app.state.templates.render(request, "provisioning/signins.html", {
        "rows": rows, "total": total, "page": number, "pages": pages(total, signins.PAGE_SIZE),
        "filters": filters, "query": _query_string(filters), "tree": tree, "area": tree.label(principal.jurisdiction),
        "event_options": [(e, str(labels.event(e))) for e in signins.EVENTS],
        "outcome_options": [(o, str(labels.outcome(o))) for o in signins.OUTCOMES],
        "area_options": [(u.path, ("— " * (u.depth - top)) + u.name) for u in areas],
        "role_label": role_label,
    }, headers=NO_STORE)


@router.get("/signins.xlsx")
async def signin_history_export(request: Request, principal: Principal = Depends(console_user(*signins.VIEWERS))):
    """The filtered events (at most signins.EXPORT_LIMIT, newest first) as a spreadsheet."""
    runtime = request.app.state.runtime
    tree = runtime.tree
    filters = _filters(request, principal)
    async with runtime.database.transaction(readonly=True) as session:
        rows = await signins.history_rows(session, principal, filters)
    lang = lang_of(request)
    labels = _labels(request)
    column = lambda code: str(labels.column(code))  # noqa: E731
    book = Workbook()
    sheet = book.active
    sheet.title = column("title")[:31]
    now = datetime.now(UTC)

    def add(values: list[object], bold: bool = False) -> None:
        sheet.append([spreadsheet_cell(v) for v in values])
        if bold:
            for cell in sheet[sheet.max_row]:
                cell.font = Font(bold=True)

    add([column("title")], bold=True)
    add([column("filters"), " · ".join(f"{k}={v}" for k, v in filters.query().items()) or "—"])
    add([column("exported_by"), f"{principal.name} ({principal.username})"])
    add([column("exported_at"), local_time(now)])
    add([column("rows"), len(rows)])
    sheet.append([])
    add([column(c) for c in ("time", "event", "outcome", "detail", "username", "role", "area", "address", "by")],
        bold=True)
    for r in rows:
        add([local_time(r.at), str(labels.event(r.event)), str(labels.outcome(r.outcome)), str(labels.detail(r.detail)),
             r.username, role_label(r.role, lang) if r.role else "", tree.label(r.jurisdiction) if r.jurisdiction else "",
             r.address or "", r.actor_name or ""])
    for letter, width in zip("ABCDEFGHI", (18, 20, 26, 30, 28, 26, 34, 20, 30), strict=True):
        sheet.column_dimensions[letter].width = width
    stream = io.BytesIO()
    book.save(stream)
    stamp = now.astimezone(VIETNAM_TIME).strftime("%Y%m%d-%H%M")
    return Response(stream.getvalue(), media_type=XLSX, headers={
        **NO_STORE, "content-disposition": f'attachment; filename="lich-su-dang-nhap-{stamp}.xlsx"'})
