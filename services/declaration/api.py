"""JSON endpoints of the declaration service."""
from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel

from .service import venue_by_code

router = APIRouter(prefix="/api", tags=["venues"])


class PublicVenueOut(BaseModel):
    code: str
    name: str
    unit_name: str
    address: str
    active: bool


@router.get("/venues/{code}", response_model=PublicVenueOut)
async def public_venue(request: Request, code: str = Path(pattern=r"^[A-Za-z0-9]{4,20}$")) -> PublicVenueOut:
    """What a visitor sees of a venue before declaring (no personal data)."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        venue = await venue_by_code(session, code)
    if venue is None:
        raise HTTPException(404, "Không tìm thấy địa điểm / Unknown venue code")
    return PublicVenueOut(code=venue.code, name=venue.name, unit_name=venue.unit_name, address=venue.address,
                          active=venue.active)
