"""JSON endpoints of provisioning: tokens, identity, batches and issuing, units, venues."""
from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from libs.common.auth import Principal, Role, require
from libs.common.ratelimit import client_address

from . import access, accounts, batches, issuing, venues
from .schemas import (
    AccountOut, ActionOut, BatchDetailOut, BatchOut, Credentials, ForwardedUnitOut, IssueIn, JobOut, MeOut,
    OneTimePasswordOut, StaffIn, TokenOut, UnitDetailOut, UnitOut, VenueOut,
)
from .service import SignInFailed, venues_visible_to
from .signins.hashing import HashingBusy
from .tokens import sign_in, signer_for
from .web import district_of, text

router = APIRouter(prefix="/api", tags=["identity"])


def refused(request: Request, code: str, status: int = 409) -> HTTPException:
    return HTTPException(status, text(request, code))


@router.post("/token", response_model=TokenOut)
async def token(credentials: Credentials, request: Request) -> TokenOut:
    """Exchange a username and password for a short-lived signed token."""
    runtime = request.app.state.runtime
    try:
        principal = await sign_in(runtime, credentials.username, credentials.password,
                                  address=client_address(request.scope))
    except SignInFailed as exc:
        raise HTTPException(401, exc.message) from None
    except HashingBusy as exc:
        raise HTTPException(503, exc.message, headers={"Retry-After": str(exc.retry_after)}) from None
    signer = signer_for(runtime)
    return TokenOut(access_token=signer.sign(principal), expires_in=signer.ttl_seconds,
                    must_change_password=principal.must_change_password)


@router.get("/me", response_model=MeOut)
async def me(principal: Principal = Depends(require())) -> MeOut:
    """Who the token belongs to."""
    return MeOut(account_id=principal.account_id, username=principal.username, name=principal.name,
                 role=str(principal.role), jurisdiction=principal.jurisdiction, unit_id=principal.unit_id)


@router.get("/venues", response_model=list[VenueOut])
async def venue_list(request: Request, principal: Principal = Depends(require())) -> list:
    """Venues of the caller's unit, or within the caller's jurisdiction."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await venues_visible_to(session, principal)
    return [VenueOut.model_validate(v) for v in rows]


# --- batches and issuing (the city; the district reads its own) ------------------------------

def _batch_out(summary: batches.BatchSummary) -> dict:
    b = summary.batch
    return {"id": b.id, "reference": b.reference, "district_path": b.district_path, "unit_count": b.unit_count,
            "forwarded_at": b.forwarded_at, "pending": summary.pending, "issued": summary.issued,
            "failed": summary.failed, "with_email": summary.with_email, "active_job": summary.active_job}


@router.get("/batches", response_model=list[BatchOut], tags=["issuing"])
async def batch_list(request: Request, principal: Principal = Depends(require(*access.BATCH_VIEWERS))) -> list:
    """Batches forwarded by the districts of the caller's jurisdiction, newest first."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await batches.summaries(session, principal)
    return [_batch_out(s) for s in rows]


@router.get("/batches/{batch_id}", response_model=BatchDetailOut, tags=["issuing"])
async def batch_detail(batch_id: UUID, request: Request, page: int = Query(1, ge=1, le=100_000),
                       principal: Principal = Depends(require(*access.BATCH_VIEWERS))) -> dict:
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        batch = await batches.get_batch(session, principal, batch_id)
        if batch is None:
            raise HTTPException(404, text(request, "not_found"))
        [summary] = [s for s in await batches.summaries(session, principal, district_path=batch.district_path)
                     if s.batch.id == batch.id]
        units, _ = await batches.batch_units(session, batch.id, page=page)
    return {**_batch_out(summary), "units": [ForwardedUnitOut.model_validate(u) for u in units]}


@router.post("/batches/{batch_id}/issue", response_model=JobOut, status_code=202, tags=["issuing"])
async def issue(batch_id: UUID, request: Request, body: IssueIn | None = None,
                principal: Principal = Depends(require(Role.CITY_DIC))) -> JobOut:
    """Issue the accounts of the whole batch, or of one unit of it; the job runs in the background."""
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            batch = await batches.get_batch(session, principal, batch_id)
            if batch is None:
                raise HTTPException(404, text(request, "not_found"))
            job = await issuing.request_issue(session, principal, batch, body.registration_id if body else None)
    except issuing.IssueRefused as exc:
        raise refused(request, exc.code) from None
    issuing.wake(runtime)
    return JobOut.model_validate(job)


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["issuing"])
async def job(job_id: UUID, request: Request, response: Response,
              principal: Principal = Depends(require(*access.BATCH_VIEWERS))) -> JobOut:
    """The progress of an issuing job (poll it)."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        found = await issuing.get_job(session, principal, job_id)
    if found is None:
        raise HTTPException(404, text(request, "not_found"))
    response.headers["cache-control"] = "no-store"
    return JobOut.model_validate(found)


# --- units and accounts -----------------------------------------------------------------------

@router.get("/units", response_model=list[UnitOut], tags=["units"])
async def unit_list(request: Request, q: str = Query("", max_length=200), page: int = Query(1, ge=1, le=100_000), principal: Principal = Depends(require())) -> list:
    """Units of the caller's jurisdiction (a unit's own accounts see their unit only)."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows, _ = await venues.units_page(session, principal, search=q, page=page)
    return [UnitOut.model_validate(u) for u in rows]


def _account_out(account) -> AccountOut:  # noqa: ANN001
    return AccountOut.model_validate({k: getattr(account, k) for k in AccountOut.model_fields})


@router.get("/units/{unit_id}", response_model=UnitDetailOut, tags=["units"])
async def unit_detail(unit_id: UUID, request: Request, principal: Principal = Depends(require())) -> dict:
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        unit = await venues.get_unit(session, principal, unit_id)
        if unit is None:
            raise HTTPException(404, text(request, "not_found"))
        unit_venues = await venues.venues_of(session, unit.id)
        unit_accounts = await accounts.accounts_of_unit(session, unit.id)
    if principal.role == Role.GATE_STAFF:
        unit_accounts = [a for a in unit_accounts if str(a.id) == principal.account_id]
    return {**UnitOut.model_validate(unit).model_dump(), "venues": [VenueOut.model_validate(v) for v in unit_venues],
            "accounts": [_account_out(a) for a in unit_accounts]}


@router.post("/accounts/{account_id}/{action}", tags=["units"], responses={200: {"model": OneTimePasswordOut}})
async def account_action(account_id: UUID, action: str, request: Request,
                         principal: Principal = Depends(require())) -> dict:
    """``reset`` (unit administrators: delivered to the unit; gate staff: returned once), ``disable``, ``enable``."""
    if action not in ("reset", "disable", "enable"):
        raise HTTPException(404, text(request, "not_found"))
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            account = await accounts.get_account(session, principal, account_id)
            if account is None:
                raise HTTPException(404, text(request, "not_found"))
            shown = None
            if action == "reset":
                shown = await accounts.reset_password(session, runtime.settings, principal, account,
                                                      district_of(runtime.tree, account.jurisdiction),
                                                      address=client_address(request.scope))
            else:
                await accounts.set_disabled(session, principal, account, action == "disable",
                                            token_ttl=runtime.settings.token_ttl_seconds,
                                            address=client_address(request.scope))
    except (accounts.AccountActionRefused, issuing.IssueRefused) as exc:
        raise refused(request, exc.code, 403 if exc.code in ("not_allowed", "not_yourself") else 409) from None
    if shown is not None:
        return OneTimePasswordOut(account_id=shown.account.id, username=shown.account.username,
                                  password=shown.password).model_dump(mode="json")
    code = {"reset": "reset_done", "disable": "disabled_done", "enable": "enabled_done"}[action]
    return ActionOut(message=text(request, code)).model_dump()


@router.post("/units/{unit_id}/staff", response_model=OneTimePasswordOut, status_code=201, tags=["units"])
async def create_staff(unit_id: UUID, body: StaffIn, request: Request,
                       principal: Principal = Depends(require(*access.STAFF_MANAGERS))) -> OneTimePasswordOut:
    """A gate staff account of the unit; the password is in this answer only."""
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            unit = await venues.get_unit(session, principal, unit_id)
            if unit is None:
                raise HTTPException(404, text(request, "not_found"))
            created = await accounts.create_gate_staff(session, runtime.settings, principal, unit, body.name)
    except accounts.AccountActionRefused as exc:
        raise refused(request, exc.code, 403 if exc.code == "not_allowed" else 409) from None
    return OneTimePasswordOut(account_id=created.account.id, username=created.account.username,
                              password=created.password)
