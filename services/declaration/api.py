"""JSON endpoints of the declaration service.

``POST /api/declarations`` is the hot path: it reads and bounds its own body, validates
it with the same model as the HTML form, and waits for the group commit. The others
serve the pickers' data, the pass keys, the gates' verification fallback and entry
uploads, and the rule sets.
"""
from __future__ import annotations

import json
from functools import partial
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import to_json

from libs.common.auth import OFFICIALS, Principal, Role, require
from libs.common.problems import MEDIA_TYPE as PROBLEM
from libs.common.problems import PLEASE_CORRECT, field_of, problem_body, validation_errors
from libs.common.text import json_errors_by_field
from libs.common.ui.i18n import current_locale

from .batcher import Overloaded, StoreUnavailable
from .declare import DeclarationRefused, Ports, VenueRateLimited, accept
from .messages import api_errors, translate
from .places import load_places
from .schemas import DeclarationIn, DeclarationOut
from .screening import (
    CITY_HEALTH_ONLY, InvalidRuleSet, RuleSetRefused, approve_rule_set, list_rule_sets, propose_rule_set,
    reject_rule_set,
)
from .service import GATE_ROLES, count_today, record_entries, venue_for_gate, venue_by_code
from .web import BadBody, read_body

router = APIRouter(prefix="/api")

REFUSED_FIELD = {"too_many": ["people"], "key_reused": ["idempotency_key"]}
BUSY = "Hệ thống đang bận, vui lòng gửi lại sau ít giây / The system is busy, please send again in a few seconds"


def ports_of(request: Request) -> Ports:
    return request.app.state.runtime.extras["declaration"]


def refusal_body(status: int, loc: list, kind: str, message: str, **params: object) -> dict:
    """One refusal as a problem (libs/common/problems.py) in the request's language: the
    message is the detail, and the field's error (``kind`` is its ``type``)."""
    lang = current_locale()
    text = translate(message, lang, **params)
    return problem_body(status, lang, (text, text),
                        errors=[{"field": field_of(loc), "message": text, "type": kind}])


def problem(status: int, loc: list, kind: str, message: str, **params: object) -> JSONResponse:
    return JSONResponse(refusal_body(status, loc, kind, message, **params), status_code=status,
                        media_type=PROBLEM)


@router.post(
    "/declarations", tags=["declarations"], status_code=201, response_model=DeclarationOut,
    responses={200: {"description": "the same idempotency key was sent before with the same request: "
                                    "the first answer"},
               409: {"description": "the idempotency key was sent before with another request"},
               415: {"description": "the body is not sent as application/json"},
               404: {"description": "unknown venue code"}, 410: {"description": "venue disabled or code replaced"},
               413: {"description": "body too large"},
               429: {"description": "too many requests from this address, or declarations at this venue: "
                                    "nothing stored, send again after Retry-After seconds"}, 422: {"description": "invalid fields, each with a message"},
               503: {"description": "busy or the database is unavailable: nothing stored, send again"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/DeclarationIn"}}}}},
)
async def create_declaration(request: Request) -> Response:
    """Declare at a venue: one person or a group. The answer comes after the data is stored,
    with a signed personal QR code (pass) per person."""
    runtime = request.app.state.runtime
    try:
        body = await read_body(request, runtime.settings.max_body_bytes)
    except BadBody as exc:
        status, payload, headers = problem_bytes(exc.status, [], "body", exc.message)
    else:
        status, payload, headers = await declare_json(runtime, body)
    return Response(payload, status_code=status, headers=dict(headers),
                    media_type=PROBLEM if status >= 400 else "application/json")


async def declare_json(runtime, body: bytes) -> tuple[int, bytes, list[tuple[str, str]]]:  # noqa: ANN001
    """The whole of POST /api/declarations after the body was read (also called by fastpath.py)."""
    try:
        data = DeclarationIn.model_validate_json(body)
    except ValidationError as exc:
        lang = current_locale()
        errors = validation_errors(api_errors(json_errors_by_field(DeclarationIn, body, exc)), lang)
        return 422, _dumps(problem_body(422, lang, PLEASE_CORRECT, errors=errors)), []
    try:
        answer = await accept(runtime.extras["declaration"], data,
                              session_factory=partial(runtime.database.transaction, readonly=True))
    except DeclarationRefused as exc:
        status, payload, headers = problem_bytes(exc.status, REFUSED_FIELD.get(exc.code, ["venue_code"]), exc.code,
                                                 exc.message, **exc.params)
        if isinstance(exc, VenueRateLimited):
            headers = [("retry-after", exc.retry_after)]
        return status, payload, headers
    except (Overloaded, StoreUnavailable):
        return 503, _dumps(problem_body(503, current_locale(), BUSY)), [("retry-after", "2")]
    return (200 if answer["duplicate"] else 201), _dumps(answer), []


def _dumps(value: object) -> bytes:
    """UTF-8 JSON, serialised in Rust (a third of ``json.dumps``'s cost on the hot path)."""
    return to_json(value, fallback=str)


def problem_bytes(status: int, loc: list, kind: str, message: str,
                  **params: object) -> tuple[int, bytes, list[tuple[str, str]]]:
    return status, _dumps(refusal_body(status, loc, kind, message, **params)), []


class PublicVenueOut(BaseModel):
    code: str
    name: str
    unit_name: str
    address: str
    active: bool


@router.get("/venues/{code}", response_model=PublicVenueOut, tags=["venues"])
async def public_venue(request: Request, code: str = Path(pattern=r"^[A-Za-z0-9]{4,20}$")) -> PublicVenueOut:
    """What a visitor sees of a venue before declaring (no personal data)."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        venue = await venue_by_code(session, code)
    if venue is None:
        raise HTTPException(404, "Không tìm thấy địa điểm / Unknown venue code")
    return PublicVenueOut(code=venue.code, name=venue.name, unit_name=venue.unit_name, address=venue.address,
                          active=venue.active)


@router.get("/places/{code}.json", tags=["places"])
async def places(request: Request, code: str = Path(pattern=r"^\d{1,3}$")) -> Response:
    """The districts and communes of a province (for the address pickers); cached by browsers."""
    found = load_places().province_json(code)
    if found is None:
        raise HTTPException(404, "Không có tỉnh/thành này / Unknown province")
    body, etag = found
    headers = {"etag": etag, "cache-control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get("/pass-keys", tags=["passes"])
async def pass_keys(request: Request) -> Response:
    """The public keys of personal QR codes (JWK set, Ed25519): gates verify offline with them."""
    body = json.dumps(ports_of(request).keys.jwks()).encode()
    return Response(body, media_type="application/json", headers={"cache-control": "public, max-age=3600"})


class VerifyIn(BaseModel):
    code: str = Field(min_length=1, max_length=1000, description="the text of the scanned personal QR code")


class VerifyOut(BaseModel):
    outcome: str = Field(description="valid, expired, red or forged")
    result: str | None
    declaration_id: str | None
    expires_at: int | None


@router.post("/passes/verify", response_model=VerifyOut, tags=["passes"])
async def verify_pass(payload: VerifyIn, request: Request, _: Principal = Depends(require(*GATE_ROLES))) -> VerifyOut:
    """Server-side check of a personal QR code, for gate browsers without WebCrypto Ed25519."""
    found = ports_of(request).keys.verify(payload.code)
    return VerifyOut(outcome=found.outcome, result=found.result, expires_at=found.expires_at,
                     declaration_id=str(found.declaration_id) if found.declaration_id else None)


class EntryIn(BaseModel):
    nonce: UUID = Field(description="made by the scanner: the same entry sent twice counts once")
    declaration_id: UUID | None = None
    result: str = Field(pattern=r"^(green|yellow|manual)$")
    at: float | None = Field(default=None, description="unix time of the scan (offline scans uploaded later)")


class EntriesIn(BaseModel):
    venue_id: UUID
    entries: list[EntryIn] = Field(min_length=1, max_length=500)


class CountsOut(BaseModel):
    entries: int
    green: int
    yellow: int
    red: int


@router.post("/gate/entries", response_model=CountsOut, tags=["gate"])
async def upload_entries(payload: EntriesIn, request: Request,
                         principal: Principal = Depends(require(*GATE_ROLES))) -> CountsOut:
    """Entries counted at a gate (also scans made offline, uploaded later); idempotent per nonce."""
    async with request.app.state.runtime.database.transaction() as session:
        venue = await venue_for_gate(session, principal, payload.venue_id)
        await record_entries(session, venue, principal, [e.model_dump() for e in payload.entries])
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        return CountsOut(**await count_today(session, venue.venue_id))


@router.get("/gate/{venue_id}/counts", response_model=CountsOut, tags=["gate"])
async def gate_counts(venue_id: UUID, request: Request,
                      principal: Principal = Depends(require(*GATE_ROLES))) -> CountsOut:
    """Today's entries and declarations by colour at a venue of the caller's unit."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        venue = await venue_for_gate(session, principal, venue_id)
        return CountsOut(**await count_today(session, venue.venue_id))


class RuleSetOut(BaseModel):
    version: str
    active: bool
    state: str = Field(description="active, pending (waiting for a second official), rejected or earlier")
    created_at: str
    created_by: str | None
    proposed_by: str | None = Field(description="the city health officer who proposed it (= created_by)")
    approved_by: str | None
    approved_at: str | None
    activated_at: str | None
    rejected_by: str | None
    rejected_at: str | None
    rules: dict


def _iso(moment) -> str | None:  # noqa: ANN001
    return moment.isoformat() if moment else None


def _rule_set_out(r) -> dict:  # noqa: ANN001 - models.RuleSet
    return RuleSetOut(version=r.version, active=r.active, state=r.state, created_at=r.created_at.isoformat(),
                      created_by=r.created_by, proposed_by=r.created_by, approved_by=r.approved_by,
                      approved_at=_iso(r.approved_at), activated_at=_iso(r.activated_at), rejected_by=r.rejected_by,
                      rejected_at=_iso(r.rejected_at), rules=json.loads(r.rules)).model_dump()


def _bilingual(message: str) -> str:
    return f"{translate(message, 'vi')} / {message}"


@router.get("/rule-sets", response_model=list[RuleSetOut], tags=["screening"])
async def rule_sets(request: Request, _: Principal = Depends(require(*OFFICIALS))) -> list[dict]:
    """Every version of the screening rules, newest first, with who proposed and approved it."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await list_rule_sets(session)
    return [_rule_set_out(r) for r in rows]


@router.post("/rule-sets", status_code=201, response_model=RuleSetOut, tags=["screening"])
async def new_rule_set(request: Request, principal: Principal = Depends(
        require(Role.HEALTH_OFFICER, refusal=_bilingual(CITY_HEALTH_ONLY)))) -> Response:
    """Propose a new version of the screening rules (a city health officer). It is not active
    until a second city health officer approves it (``POST /api/rule-sets/{version}/approve``)."""
    runtime = request.app.state.runtime
    try:
        body = await read_body(request, 256 * 1024)
        async with runtime.database.transaction() as session:
            book = await propose_rule_set(session, body.decode("utf-8"), by=principal,
                                          city_path=runtime.tree.root.path)
    except BadBody as exc:
        return problem(exc.status, [], "body", exc.message)
    except (InvalidRuleSet, UnicodeDecodeError) as exc:
        text = f"Bộ tiêu chí không hợp lệ: {exc}" if current_locale() == "vi" else f"Invalid rule set: {exc}"
        return JSONResponse(problem_body(422, current_locale(), (text, text),
                                         errors=[{"field": "", "message": text, "type": "rule_set"}]),
                            status_code=422, media_type=PROBLEM)
    except RuleSetRefused as exc:
        raise HTTPException(exc.status, _bilingual(exc.message)) from None
    async with runtime.database.transaction(readonly=True) as session:
        rows = await list_rule_sets(session)
    row = next(r for r in rows if r.version == book.version)
    return JSONResponse(_rule_set_out(row), status_code=201)


async def _decide(request: Request, principal: Principal, version: str, step) -> dict:  # noqa: ANN001
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            row = await step(session, version, by=principal, city_path=runtime.tree.root.path)
            return _rule_set_out(row)
    except RuleSetRefused as exc:
        raise HTTPException(exc.status, _bilingual(exc.message)) from None


@router.post("/rule-sets/{version}/approve", response_model=RuleSetOut, tags=["screening"])
async def approve(request: Request, version: str = Path(max_length=40), principal: Principal = Depends(
        require(Role.HEALTH_OFFICER, refusal=_bilingual(CITY_HEALTH_ONLY)))) -> dict:
    """A second city health officer (not the proposer) approves a pending version: it becomes active."""
    return await _decide(request, principal, version, approve_rule_set)


@router.post("/rule-sets/{version}/reject", response_model=RuleSetOut, tags=["screening"])
async def reject(request: Request, version: str = Path(max_length=40), principal: Principal = Depends(
        require(Role.HEALTH_OFFICER, refusal=_bilingual(CITY_HEALTH_ONLY)))) -> dict:
    """The proposer withdraws a pending version, or another city health officer declines it."""
    return await _decide(request, principal, version, reject_rule_set)
