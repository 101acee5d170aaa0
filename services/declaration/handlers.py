"""Event handlers of the declaration service."""
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events.provisioning import VenueCreated

from .models import Venue


async def on_venue_created(session: AsyncSession, event: VenueCreated) -> None:
    data = event.data
    await session.merge(Venue(
        venue_id=data.venue_id, code=data.code, unit_id=data.unit_id, unit_name=data.unit_name, name=data.name,
        address=data.address, commune_path=data.commune_path, active=True,
    ))


HANDLERS = {"provisioning.venue.created": on_venue_created}
