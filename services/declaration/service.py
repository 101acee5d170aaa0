"""Use cases of the declaration service."""
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, within

from .models import Venue


async def venue_by_code(session: AsyncSession, code: str) -> Venue | None:
    return (await session.execute(select(Venue).where(Venue.code == code.strip().upper()))).scalar_one_or_none()


async def venues_visible_to(session: AsyncSession, principal: Principal) -> list[Venue]:
    query = select(Venue).order_by(Venue.unit_name, Venue.name)
    if principal.unit_id:
        query = query.where(Venue.unit_id == UUID(principal.unit_id))
    else:
        query = query.where(within(Venue.commune_path, principal.jurisdiction))
    return list((await session.execute(query.limit(500))).scalars())
