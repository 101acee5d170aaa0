"""The FHIR R4 interconnection API (circular 2.2): ``/api/fhir/...``.

Authenticated with the bearer tokens of provisioning. Powers by purpose (purposes.py):
the declarations (``QuestionnaireResponse``, person-level) go only to an interoperability
client (its own credentials, a token with the scope ``fhir.read``) and to health officers
within their jurisdiction for a case investigation with a case reference; the directory
(``Organization``, ``Location``), the ``Questionnaire``, the ``AuditEvent`` export and the
``CapabilityStatement`` also to the city DIC, which is refused the declarations. A client
gives a purpose (``X-Purpose``) on every call. Every request is written to the access log
(``fhir.read``, the resource type, the purpose and case reference, the number of resources
returned), so the national exchange is accountable like an official's query.

Searches are incremental and paginated: ``_count`` (1..1000, default 100), ``_since``
(an instant: only what was received or changed since), and the opaque ``_cursor`` of the
``next`` link, which a client follows until there is none; it then keeps the last
``_cursor`` (or the Bundle's ``timestamp`` as ``_since``) for its next run.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role, require, within
from libs.common.ratelimit import client_address

from ..accesslog import entries_after, record_access
from ..directory import UnitInfo, units, utc, venues, _venue
from ..visits import visits
from . import resources as fhir
from .purposes import PERSON_LEVEL_REFUSAL, Purpose, PurposeProblem, purpose_of

router = APIRouter(prefix="/api/fhir", tags=["fhir"])
FHIR_JSON = "application/fhir+json"
# The directory, the questionnaire and the audit export; the declarations: PERSON_ROLES.
FHIR_ROLES = (Role.CITY_DIC, Role.INTEROP_CLIENT)
PERSON_ROLES = (Role.INTEROP_CLIENT, Role.HEALTH_OFFICER)
MAX_COUNT = 1000


class FhirError(HTTPException):
    """Answered as an OperationOutcome."""


class PurposeRefused(FhirError):
    """A call without a valid purpose (or scope): answered, and written to the access log."""

    def __init__(self, problem: PurposeProblem) -> None:
        super().__init__(problem.status, problem.message)
        self.code = problem.code


def _outcome(status: int, message: str, code: str = "invalid") -> JSONResponse:
    return JSONResponse({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": code, "diagnostics": message}]}, status_code=status, media_type=FHIR_JSON)


def _count(request: Request) -> int:
    raw = request.query_params.get("_count", "100")
    try:
        value = int(raw)
    except ValueError:
        raise FhirError(400, "_count phải là số nguyên / _count must be an integer") from None
    return max(1, min(value, MAX_COUNT))


def _since(request: Request) -> datetime | None:
    raw = request.query_params.get("_since")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(400, "_since phải là thời điểm ISO 8601 / _since must be an ISO 8601 instant") from None
    return utc(moment)


def _cursor(request: Request) -> str | None:
    raw = request.query_params.get("_cursor")
    if not raw:
        return None
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise FhirError(400, "_cursor không hợp lệ / invalid _cursor") from None


def _encode(cursor: str) -> str:
    return base64.urlsafe_b64encode(cursor.encode()).decode().rstrip("=")


def _urls(request: Request, resource_type: str, next_cursor: str | None, count: int) -> tuple[str, str, str | None]:
    base = str(request.base_url).rstrip("/") + "/api/fhir"
    self_url = f"{base}/{resource_type}" + (f"?{request.url.query}" if request.url.query else "")
    # The next page keeps the search (``_since``) and moves the cursor.
    kept = {k: v for k, v in request.query_params.items() if k in ("_since",)}
    next_url = f"{base}/{resource_type}?{urlencode({**kept, '_count': count, '_cursor': _encode(next_cursor)})}" \
        if next_cursor else None
    return base, self_url, next_url


def _purpose(request: Request, principal: Principal, *, person_level: bool = False) -> Purpose:
    try:
        return purpose_of(request, principal, person_level=person_level)
    except PurposeProblem as problem:
        raise PurposeRefused(problem) from None


async def _answer(request: Request, principal: Principal, session: AsyncSession, resource_type: str,
                  resources: list[dict], next_cursor: str | None, count: int) -> JSONResponse:
    purpose = _purpose(request, principal, person_level=resource_type == "QuestionnaireResponse")
    await record_access(session, principal, "fhir.read", detail=resource_type, row_count=len(resources),
                        purpose=purpose.code, case_reference=purpose.case_reference,
                        client_address=client_address(request.scope))
    base, self_url, next_url = _urls(request, resource_type, next_cursor, count)
    return JSONResponse(fhir.bundle(resource_type, resources, base, self_url, next_url, datetime.now(UTC)),
                        media_type=FHIR_JSON, headers={"cache-control": "no-store"})


def _raise(error: Exception):  # noqa: ANN202
    async def work() -> JSONResponse:
        raise error
    return work


def _settled(request: Request) -> datetime:
    seconds = request.app.state.runtime.settings.fhir_settle_seconds
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def _handle(request: Request, work, principal: Principal | None = None,  # noqa: ANN001
                  resource_type: str | None = None) -> JSONResponse:
    try:
        return await work()
    except FhirError as error:
        if isinstance(error, PurposeRefused) and principal is not None:
            async with request.app.state.runtime.database.transaction() as session:
                await record_access(session, principal, "fhir.read", outcome="refused",
                                    detail=f"{resource_type}:{error.code}"[:60],
                                    client_address=client_address(request.scope))
        return _outcome(error.status_code, str(error.detail))


@router.get("/metadata")
async def capability(request: Request, principal: Principal = Depends(require(*FHIR_ROLES))) -> JSONResponse:
    """The CapabilityStatement: what this server exports."""
    kinds = ["Questionnaire", "QuestionnaireResponse", "Organization", "Location", "AuditEvent"]
    return JSONResponse({
        "resourceType": "CapabilityStatement", "status": "active", "date": "2021-06-20", "kind": "instance",
        "fhirVersion": "4.0.1", "format": ["json"],
        "implementation": {"description": "khaibao reporting — Hệ thống khai báo y tế điện tử TP. Hồ Chí Minh",
                           "url": str(request.base_url).rstrip("/") + "/api/fhir"},
        "rest": [{"mode": "server", "resource": [
            {"type": kind, "interaction": [{"code": "search-type"}],
             "searchParam": [{"name": "_since", "type": "date"}, {"name": "_count", "type": "number"},
                             {"name": "_cursor", "type": "string"}]} for kind in kinds]}],
    }, media_type=FHIR_JSON)


@router.get("/Questionnaire/{questionnaire_id}")
async def read_questionnaire(questionnaire_id: str, request: Request,
                             principal: Principal = Depends(require(*FHIR_ROLES))) -> JSONResponse:
    try:
        purpose = _purpose(request, principal)
    except PurposeRefused as error:
        return await _handle(request, _raise(error), principal, "Questionnaire")
    if questionnaire_id != fhir.QUESTIONNAIRE_ID:
        return _outcome(404, "Không có biểu mẫu này / No such Questionnaire", "not-found")
    async with request.app.state.runtime.database.transaction() as session:
        await record_access(session, principal, "fhir.read", detail="Questionnaire", row_count=1,
                            purpose=purpose.code, case_reference=purpose.case_reference,
                            client_address=client_address(request.scope))
    return JSONResponse(fhir.questionnaire(), media_type=FHIR_JSON)


@router.get("/Questionnaire")
async def search_questionnaire(request: Request, principal: Principal = Depends(require(*FHIR_ROLES))):
    async def work() -> JSONResponse:
        count = _count(request)
        async with request.app.state.runtime.database.transaction() as session:
            return await _answer(request, principal, session, "Questionnaire", [fhir.questionnaire()], None, count)
    return await _handle(request, work, principal, "Questionnaire")


async def _person_level_refused(request: Request, principal: Principal) -> None:
    """A role refused the declarations (e.g. the city DIC): in the access log before the 403."""
    async with request.app.state.runtime.database.transaction() as session:
        await record_access(session, principal, "fhir.read", outcome="refused",
                            detail="QuestionnaireResponse:role_not_permitted",
                            purpose=(request.headers.get("x-purpose", "").strip().lower() or None),
                            case_reference=" ".join(request.headers.get("x-case-reference", "").split())[:80] or None,
                            client_address=client_address(request.scope))


@router.get("/QuestionnaireResponse")
async def search_responses(request: Request, principal: Principal = Depends(
        require(*PERSON_ROLES, refusal=PERSON_LEVEL_REFUSAL, on_refusal=_person_level_refused))):
    """Declarations in the order received (``seq``): incremental by cursor or ``_since``.
    Person-level: an interoperability client with a purpose (header ``X-Purpose``), or a health
    officer for a case investigation (``X-Purpose: case_investigation`` and ``X-Case-Reference``)."""
    async def work() -> JSONResponse:
        _purpose(request, principal, person_level=True)   # before any query
        count, since, after = _count(request), _since(request), _seq_cursor(request)
        query = (select(visits).where(within(visits.c.commune_path, principal.jurisdiction), visits.c.seq > after,
                                      visits.c.received_at <= _settled(request))
                 .order_by(visits.c.seq).limit(count + 1))
        if since is not None:
            query = query.where(or_(visits.c.received_at >= since, visits.c.erased_at >= since))
        async with request.app.state.runtime.database.transaction() as session:
            rows, next_cursor = _page((await session.execute(query)).all(), count, lambda r: str(r.seq))
            return await _answer(request, principal, session, "QuestionnaireResponse",
                                 [fhir.questionnaire_response(r) for r in rows], next_cursor, count)
    return await _handle(request, work, principal, "QuestionnaireResponse")


def _seq_cursor(request: Request) -> int:
    """Where a search in the order written (``seq``) resumes: after its ``_cursor``, or at 0."""
    cursor = _cursor(request)
    try:
        return int(cursor) if cursor is not None else 0
    except ValueError:
        raise FhirError(400, "_cursor không hợp lệ / invalid _cursor") from None


def _page(found: list, count: int, cursor_of: Callable) -> tuple[list, str | None]:
    """The first ``count`` of ``found`` (one more was read, to tell that more follow) and the
    ``_cursor`` of the next page, if there is one."""
    return found[:count], cursor_of(found[count - 1]) if len(found) > count else None


def _keyset(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    try:
        stamp, _, ident = cursor.partition("|")
        return utc(datetime.fromisoformat(stamp)), UUID(ident)
    except ValueError:
        raise FhirError(400, "_cursor không hợp lệ / invalid _cursor") from None


def _changed_page(request: Request, principal: Principal, table, ident) -> tuple:  # noqa: ANN001
    """Rows of ``table`` in the caller's area, in the order they last changed, after the
    request's ``_since`` and ``_cursor``; one more than ``_count`` tells that more follow."""
    count, since, key = _count(request), _since(request), _keyset(_cursor(request))
    query = select(table).where(within(table.c.commune_path, principal.jurisdiction))
    if since is not None:
        query = query.where(table.c.changed_at >= since)
    if key is not None:
        query = query.where(or_(table.c.changed_at > key[0], and_(table.c.changed_at == key[0], ident > key[1])))
    return query.order_by(table.c.changed_at, ident).limit(count + 1), count


def _cursor_after(changed_at: datetime, ident: UUID) -> str:
    return f"{changed_at.isoformat()}|{ident}"


async def _directory_search(request: Request, principal: Principal, resource_type: str, table, ident,  # noqa: ANN001
                            info: Callable, resources: Callable) -> JSONResponse:
    """A search of a directory table (units, venues) in the order its rows last changed:
    incremental by cursor or ``_since``. ``info`` reads a row, ``resources(session, found,
    tree)`` builds the page's FHIR resources."""
    async def work() -> JSONResponse:
        query, count = _changed_page(request, principal, table, ident)
        tree = request.app.state.runtime.tree
        async with request.app.state.runtime.database.transaction() as session:
            found, next_cursor = _page([info(r) for r in (await session.execute(query)).all()], count,
                                       lambda i: _cursor_after(i.changed_at, getattr(i, ident.name)))
            return await _answer(request, principal, session, resource_type,
                                 await resources(session, found, tree), next_cursor, count)
    return await _handle(request, work, principal, resource_type)


@router.get("/Organization")
async def search_organizations(request: Request, principal: Principal = Depends(require(*FHIR_ROLES))):
    """Units in the order they last changed: incremental by cursor or ``_since``."""
    async def organizations(session: AsyncSession, found: list[UnitInfo], tree) -> list[dict]:  # noqa: ANN001
        from ..ncovi import ncovi_identifiers

        marks = await ncovi_identifiers(session, found)
        return [fhir.organization(u, tree, marks.get(u.unit_id)) for u in found]
    return await _directory_search(
        request, principal, "Organization", units, units.c.unit_id,
        lambda r: UnitInfo(r.unit_id, r.name, r.commune_path, utc(r.changed_at)), organizations)


@router.get("/Location")
async def search_locations(request: Request, principal: Principal = Depends(require(*FHIR_ROLES))):
    """Venues in the order they last changed: incremental by cursor or ``_since``."""
    async def locations(session: AsyncSession, found: list, tree) -> list[dict]:  # noqa: ANN001
        return [fhir.location(v, tree) for v in found]
    return await _directory_search(request, principal, "Location", venues, venues.c.venue_id, _venue, locations)


@router.get("/AuditEvent")
async def search_audit(request: Request, principal: Principal = Depends(require(*FHIR_ROLES))):
    """The access log in the order written (this request's own entry comes in the next page)."""
    async def work() -> JSONResponse:
        count, since, after = _count(request), _since(request), _seq_cursor(request)
        async with request.app.state.runtime.database.transaction() as session:
            found, next_cursor = _page(await entries_after(session, principal.jurisdiction, after, count + 1,
                                                           since=since), count, lambda e: str(e.seq))
            return await _answer(request, principal, session, "AuditEvent",
                                 [fhir.audit_event(e) for e in found], next_cursor, count)
    return await _handle(request, work, principal, "AuditEvent")


