"""Pages and JSON endpoints of the subject requests (service.py).

Console (health officers): ``GET /subject`` (the form and its help), ``POST /subject`` (find:
the person's declarations on the page), ``POST /subject/export`` (the same as .xlsx, in
Vietnamese, for the person), ``POST /subject/erase`` (without ``confirm``: the confirmation
step; with it: erase). API (bearer token): ``POST /api/subject/search``,
``POST /api/subject/export``, ``POST /api/subject/erase``. Everything is POSTed: no ID number
or reference travels in a URL.
"""
from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from openpyxl import Workbook
from openpyxl.styles import Font
from pydantic import BaseModel, Field

from libs.common.auth import Principal, refused_request_fields, require
from libs.common.console import console_user
from libs.common.problems import PLEASE_CORRECT, api_locale, problem_response
from libs.common.ratelimit import client_address
from libs.common.ui import N_

from ..messages import translate
from ..models import Declaration
from ..places import load_places
from ..web import BadBody, read_form
from .service import (
    SUBJECT_ROLES, SubjectForm, SubjectInvalid, SubjectQuery, check_form, erase_person, find_person, record_step,
)

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/subject", tags=["subject requests"])
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GENDERS = {"male": "Nam", "female": "Nữ", "other": "Khác"}
RESULTS = {"green": "Xanh", "yellow": "Vàng", "red": "Đỏ"}


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "vi")


def _local(moment: datetime | str | None) -> str:
    """In Vietnam time, as the officer and the person read it."""
    if not moment:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")


def _said(value: object, limit: int) -> str | None:
    return " ".join(str(value or "").split())[:limit] or None


async def _refused(request: Request, principal: Principal, action: str, detail: str, form: SubjectForm) -> None:
    """A refused step, in a transaction of its own (the answer is an error)."""
    async with request.app.state.runtime.database.transaction() as session:
        await record_step(session, principal, action, outcome="refused", detail=detail,
                          reference=_said(form.reference, 80), reason=_said(form.reason, 500),
                          client_address=client_address(request.scope))


def _refused_role(action: str):  # noqa: ANN202
    async def hook(request: Request, principal: Principal) -> None:
        given = await refused_request_fields(request, "reference", "reason")
        await _refused(request, principal, action, "role_not_permitted", SubjectForm(**given))
    return hook


def _row(d: Declaration) -> dict:
    places = load_places()
    address = places.label(d.province_code, d.district_code, d.commune_code, d.street) if d.province_code else ""
    return {"declaration_id": str(d.id), "submitted_at": d.submitted_at.isoformat(), "venue_code": d.venue_code,
            "commune_path": d.commune_path, "channel": d.channel, "full_name": d.full_name, "id_type": d.id_type,
            "id_number": d.id_number, "birth_date": d.birth_date.isoformat() if d.birth_date else None,
            "birth_year": d.birth_year, "gender": d.gender, "nationality": d.nationality, "phone": d.phone,
            "address": address, "symptoms": [s for s in d.symptoms.split(",") if s],
            "symptom_other": d.symptom_other, "exposures": [s for s in d.exposures.split(",") if s],
            "vaccine_doses": d.vaccine_doses, "result": d.result, "erased": d.erased_at is not None}


def _cell(value: object) -> object:
    """No formula from a declared value: a text starting like one is written as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def subject_workbook(rows: list[dict], *, query: SubjectQuery, exported_by: str, exported_at: str) -> bytes:
    """The person's declarations, in Vietnamese, for the person."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Tờ khai"
    sheet.append(["Dữ liệu khai báo y tế của một người, theo yêu cầu của chủ thể dữ liệu (Nghị định 13/2023/NĐ-CP)"])
    sheet["A1"].font = Font(bold=True)
    sheet.append(["Số giấy tờ", _cell(query.id_number or "")])
    if query.phone:
        sheet.append(["Số điện thoại", _cell(query.phone)])
    sheet.append(["Số hồ sơ yêu cầu", _cell(query.reference)])
    sheet.append(["Người xuất", _cell(exported_by)])
    sheet.append(["Thời điểm xuất", exported_at])
    sheet.append(["Số tờ khai", len(rows)])
    sheet.append([])
    header = ["Mã tờ khai", "Thời điểm khai báo", "Mã địa điểm", "Kênh", "Họ và tên", "Loại giấy tờ", "Số giấy tờ",
              "Ngày sinh", "Năm sinh", "Giới tính", "Quốc tịch", "Điện thoại", "Địa chỉ", "Triệu chứng",
              "Triệu chứng khác", "Yếu tố dịch tễ", "Số mũi vắc xin", "Kết quả sàng lọc"]
    sheet.append(header)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for r in rows:
        at = datetime.fromisoformat(r["submitted_at"])
        sheet.append([_cell(v) for v in (
            r["declaration_id"], _local(at), r["venue_code"], "Tự khai" if r["channel"] == "self" else "Tại cổng",
            r["full_name"], (r["id_type"] or "").upper(), r["id_number"], r["birth_date"] or "", r["birth_year"] or "",
            GENDERS.get(r["gender"], r["gender"]), r["nationality"], r["phone"] or "", r["address"],
            ", ".join(r["symptoms"]), r["symptom_other"] or "", ", ".join(r["exposures"]),
            r["vaccine_doses"] if r["vaccine_doses"] is not None else "", RESULTS.get(r["result"], r["result"]))])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def _page(request: Request, form: SubjectForm, *, errors: dict | None = None, rows: list[dict] | None = None,
                confirm: int | None = None, erased: int | None = None, status_code: int = 200) -> Response:
    lang = _lang(request)
    return request.app.state.templates.render(request, "declaration/subject.html", {
        "form": form, "errors": {k: translate(v, lang) for k, v in (errors or {}).items()}, "rows": rows,
        "confirm": confirm, "erased": erased, "local": _local,
        "area": request.app.state.runtime.tree.label(request.state.user.jurisdiction),
        "page_title": translate(N_("Requests of a person about their data"), lang),
    }, status_code=status_code)


async def _console_form(request: Request) -> SubjectForm:
    form = await read_form(request, 16 * 1024)
    return SubjectForm(id_number=form.get("id_number")[:40], reference=form.get("reference")[:200],
                       reason=form.get("reason")[:2000], confirm=form.get("confirm") == "yes",
                       phone=form.get("phone")[:40])


@router.get("/subject")
async def subject_form(request: Request, principal: Principal = Depends(console_user(*SUBJECT_ROLES))):
    return await _page(request, SubjectForm())


async def _find(request: Request, principal: Principal, form: SubjectForm, action: str
                ) -> tuple[SubjectQuery, list[dict]]:
    query = check_form(form, need_id=action != "subject.find")
    async with request.app.state.runtime.database.transaction() as session:
        found = await find_person(session, principal, query)
        rows = [_row(d) for d in found]
        await record_step(session, principal, action, reference=query.reference, reason=query.reason,
                          row_count=len(rows), client_address=client_address(request.scope))
    return query, rows


def _find_page(action: str, answer):  # noqa: ANN001, ANN202
    """``POST /subject`` (the page) and ``POST /subject/export`` (the .xlsx): one handler,
    ``answer(request, form, query, rows, principal)`` shapes the response."""
    async def handler(request: Request, principal: Principal = Depends(
            console_user(*SUBJECT_ROLES, on_refusal=_refused_role(action)))):
        try:
            form = await _console_form(request)
        except BadBody as exc:
            return await _page(request, SubjectForm(), errors={"id_number": exc.message}, status_code=exc.status)
        try:
            query, rows = await _find(request, principal, form, action)
        except SubjectInvalid as invalid:
            await _refused(request, principal, action, invalid.code, form)
            return await _page(request, form, errors=invalid.errors, status_code=422)
        return await answer(request, form, query, rows, principal)
    return handler


async def _found_page(request: Request, form: SubjectForm, query: SubjectQuery, rows: list[dict],
                      principal: Principal) -> Response:
    return await _page(request, form, rows=rows)


async def _found_xlsx(request: Request, form: SubjectForm, query: SubjectQuery, rows: list[dict],
                      principal: Principal) -> Response:
    return await _xlsx(query, rows, principal)


subject_find = router.post("/subject")(_find_page("subject.find", _found_page))
subject_export = router.post("/subject/export")(_find_page("subject.export", _found_xlsx))


async def _xlsx(query: SubjectQuery, rows: list[dict], principal: Principal) -> Response:
    content = await asyncio.to_thread(subject_workbook, rows, query=query,
                                      exported_by=f"{principal.name} ({principal.username})",
                                      exported_at=_local(datetime.now(UTC)))
    stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M")
    return Response(content, media_type=XLSX, headers={
        "content-disposition": f'attachment; filename="du-lieu-khai-bao-{stamp}.xlsx"', "cache-control": "no-store"})


async def _erase(request: Request, principal: Principal, query: SubjectQuery) -> int:
    async with request.app.state.runtime.database.transaction() as session:
        request_id, erased = await erase_person(session, principal, query)
        await record_step(session, principal, "subject.erase", reference=query.reference, reason=query.reason,
                          row_count=erased, client_address=client_address(request.scope), request_id=request_id)
    return erased


@router.post("/subject/erase")
async def subject_erase(request: Request, principal: Principal = Depends(
        console_user(*SUBJECT_ROLES, on_refusal=_refused_role("subject.erase")))):
    try:
        form = await _console_form(request)
    except BadBody as exc:
        return await _page(request, SubjectForm(), errors={"id_number": exc.message}, status_code=exc.status)
    try:
        query = check_form(form, need_id=True)
    except SubjectInvalid as invalid:
        await _refused(request, principal, "subject.erase", invalid.code, form)
        return await _page(request, form, errors=invalid.errors, status_code=422)
    if not form.confirm:  # the confirmation step: how many would be erased, nothing erased yet
        async with request.app.state.runtime.database.transaction(readonly=True) as session:
            count = len([d for d in await find_person(session, principal, query) if d.erased_at is None])
        return await _page(request, form, confirm=count)
    erased = await _erase(request, principal, query)
    return await _page(request, SubjectForm(), erased=erased)


# --- JSON ------------------------------------------------------------------------------

class SubjectIn(BaseModel):
    id_number: str = Field("", max_length=40)
    phone: str = Field("", max_length=40, description="instead of, or with, the ID number")
    reference: str = Field("", max_length=200, description="the case or request reference")
    reason: str = Field("", max_length=2000)
    confirm: bool = Field(False, description="erase only: true to erase")


def _invalid(request: Request, invalid: SubjectInvalid) -> JSONResponse:
    lang = api_locale(request)
    return problem_response(request, 422, PLEASE_CORRECT, lang=lang, errors=[
        {"field": k, "message": translate(v, lang)} for k, v in invalid.errors.items()])


def _find_api(action: str, answer):  # noqa: ANN001, ANN202
    """``/api/subject/search`` (JSON) and ``/api/subject/export`` (.xlsx): one handler."""
    async def handler(body: SubjectIn, request: Request, principal: Principal = Depends(
            require(*SUBJECT_ROLES, on_refusal=_refused_role(action)))) -> Response:
        form = SubjectForm(body.id_number, body.reference, body.reason, phone=body.phone)
        try:
            query, rows = await _find(request, principal, form, action)
        except SubjectInvalid as invalid:
            await _refused(request, principal, action, invalid.code, form)
            return _invalid(request, invalid)
        return await answer(query, rows, principal)
    return handler


async def _found_json(query: SubjectQuery, rows: list[dict], principal: Principal) -> Response:
    return JSONResponse({"total": len(rows), "declarations": rows}, headers={"cache-control": "no-store"})


subject_search_api = api_router.post(
    "/search", summary="Every declaration of one ID number (or phone) within the caller's jurisdiction (logged)")(
    _find_api("subject.find", _found_json))
subject_export_api = api_router.post(
    "/export", summary="The same declarations as an .xlsx file in Vietnamese, for the person (logged)")(
    _find_api("subject.export", _xlsx))


@api_router.post("/erase")
async def subject_erase_api(body: SubjectIn, request: Request, principal: Principal = Depends(
        require(*SUBJECT_ROLES, on_refusal=_refused_role("subject.erase")))) -> JSONResponse:
    """Erase the person's declarations within the caller's jurisdiction, on a lawful request
    (``confirm: true`` required); every service holding a copy erases it (logged)."""
    form = SubjectForm(body.id_number, body.reference, body.reason, body.confirm, body.phone)
    try:
        query = check_form(form, need_id=True)
        if not body.confirm:
            raise SubjectInvalid({"confirm": N_("Confirm the erasure (confirm: true).")}, "not_confirmed")
    except SubjectInvalid as invalid:
        await _refused(request, principal, "subject.erase", invalid.code, form)
        return _invalid(request, invalid)
    erased = await _erase(request, principal, query)
    return JSONResponse({"erased": erased})
