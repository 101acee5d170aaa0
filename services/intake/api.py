"""JSON endpoints of the intake service."""
from fastapi import APIRouter, Depends, HTTPException, Request

from libs.common.auth import OFFICIALS, Principal, require

from .schemas import RegistrationIn, RegistrationOut
from .service import RegistrationRejected, list_registrations, submit_registration

router = APIRouter(prefix="/api", tags=["registrations"])


@router.post("/registrations", status_code=201, response_model=RegistrationOut)
async def create_registration(payload: RegistrationIn, request: Request) -> RegistrationOut:
    """A unit registers itself (no sign-in); the answer carries its reference number."""
    runtime = request.app.state.runtime
    try:
        async with runtime.database.transaction() as session:
            registration = await submit_registration(
                session, runtime.tree, payload, deadline=runtime.settings.campaign_deadline)
    except RegistrationRejected as exc:
        raise HTTPException(422, str(exc)) from None
    return RegistrationOut.model_validate(registration, from_attributes=True)


@router.get("/registrations", response_model=list[RegistrationOut])
async def get_registrations(request: Request, principal: Principal = Depends(require(*OFFICIALS))) -> list:
    """Registrations within the caller's jurisdiction."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await list_registrations(session, principal)
    return [RegistrationOut.model_validate(r, from_attributes=True) for r in rows]
