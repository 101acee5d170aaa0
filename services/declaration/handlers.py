"""Event handlers of the declaration service: its own copy of the venue list.

Every venue event of provisioning carries the venue's whole state, so each one is an
upsert; ``updated_at`` tells the web workers' caches what to reload. A rotated code is
kept as retired, so that an old poster gets a clear message instead of a form.
Idempotent: applying an event twice leaves the same rows.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import provisioning as events

from .models import RetiredCode, Venue


async def _upsert(session: AsyncSession, data, active: bool) -> None:  # noqa: ANN001
    await session.merge(Venue(
        venue_id=data.venue_id, code=data.code, unit_id=data.unit_id, unit_name=data.unit_name, name=data.name,
        address=data.address, commune_path=data.commune_path, active=active, updated_at=time.time(),
    ))


async def on_venue_created(session: AsyncSession, event: events.VenueCreated) -> None:
    await _upsert(session, event.data, True)


async def on_venue_state(session: AsyncSession,
                         event: events.VenueUpdated | events.VenueDisabled | events.VenueEnabled) -> None:
    await _upsert(session, event.data, event.data.active)


async def on_venue_code_rotated(session: AsyncSession, event: events.VenueCodeRotated) -> None:
    data = event.data
    if data.old_code != data.code and await session.get(RetiredCode, data.old_code) is None:
        session.add(RetiredCode(code=data.old_code, venue_id=data.venue_id, retired_at=datetime.now(UTC)))
        await session.flush()  # the old code leaves the venues table in the same transaction
    await _upsert(session, data, data.active)


HANDLERS = {
    "provisioning.venue.created": on_venue_created,
    "provisioning.venue.updated": on_venue_state,
    "provisioning.venue.disabled": on_venue_state,
    "provisioning.venue.enabled": on_venue_state,
    "provisioning.venue.code_rotated": on_venue_code_rotated,
}
