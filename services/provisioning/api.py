"""JSON endpoints of provisioning: tokens for API clients, the caller's identity, venues."""
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from libs.common.auth import Principal, require

from .service import SignInFailed, venues_visible_to
from .tokens import sign_in, signer_for

router = APIRouter(prefix="/api", tags=["identity"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    must_change_password: bool


class MeOut(BaseModel):
    account_id: str
    username: str
    name: str
    role: str
    jurisdiction: str
    unit_id: str | None


class VenueOut(BaseModel):
    id: str
    code: str
    name: str
    address: str
    commune_path: str
    active: bool


@router.post("/token", response_model=TokenOut)
async def token(credentials: Credentials, request: Request) -> TokenOut:
    """Exchange a username and password for a short-lived signed token."""
    runtime = request.app.state.runtime
    try:
        principal = await sign_in(runtime, credentials.username, credentials.password)
    except SignInFailed as exc:
        raise HTTPException(401, exc.message) from None
    signer = signer_for(runtime)
    return TokenOut(access_token=signer.sign(principal), expires_in=signer.ttl_seconds,
                    must_change_password=principal.must_change_password)


@router.get("/me", response_model=MeOut)
async def me(principal: Principal = Depends(require())) -> MeOut:
    """Who the token belongs to."""
    return MeOut(account_id=principal.account_id, username=principal.username, name=principal.name,
                 role=str(principal.role), jurisdiction=principal.jurisdiction, unit_id=principal.unit_id)


@router.get("/venues", response_model=list[VenueOut])
async def venues(request: Request, principal: Principal = Depends(require())) -> list[VenueOut]:
    """Venues of the caller's unit, or within the caller's jurisdiction."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await venues_visible_to(session, principal)
    return [VenueOut(id=str(v.id), code=v.code, name=v.name, address=v.address, commune_path=v.commune_path,
                     active=v.active) for v in rows]
