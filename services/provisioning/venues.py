"""Units and venues: lists by jurisdiction, and the venue changes the declaration service learns.

Every change publishes the venue's full state (``libs.common.events.provisioning``): a new
venue, a new name, disabled or enabled, or a new code (the old one is retired for ever,
so an old poster leads to a clear message on the declaration side).
"""
from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import text as typed
from libs.common.auth import Principal
from libs.common.events.provisioning import (
    VenueCodeRotated, VenueCodeRotatedData, VenueCreated, VenueCreatedData, VenueDisabled, VenueDisabledData,
    VenueEnabled, VenueStateData, VenueUpdated,
)
from libs.common.outbox import publish

from . import access, audit
from .models import RetiredCode, Unit, Venue
from .service import unused_venue_codes

PAGE_SIZE = 50
MAX_VENUES = 100


class VenueActionRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _escape(text: str) -> str:
    return text.strip()[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def units_page(session: AsyncSession, principal: Principal, *, search: str = "", area: str | None = None,
                     page: int = 1) -> tuple[list[Unit], int]:
    query = select(Unit).where(access.scope(principal, Unit.id, Unit.commune_path))
    if area:
        query = query.where(or_(Unit.commune_path == area, Unit.commune_path.like(_escape(area) + "/%", escape="\\")))
    if search:
        term = f"%{_escape(search)}%"
        query = query.where(or_(Unit.name.ilike(term, escape="\\"), Unit.reference.ilike(term, escape="\\")))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(query.order_by(Unit.created_at.desc(), Unit.name)
                                 .offset((max(page, 1) - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return list(rows.scalars()), total


async def get_unit(session: AsyncSession, principal: Principal, unit_id: UUID) -> Unit | None:
    """The unit if the principal may see it; None otherwise (the caller answers 404)."""
    unit = await session.get(Unit, unit_id)
    if unit is None or not access.may_see(principal, unit.id, unit.commune_path):
        return None
    return unit


async def get_venue(session: AsyncSession, principal: Principal, venue_id: UUID) -> Venue | None:
    venue = await session.get(Venue, venue_id)
    if venue is None or not access.may_see(principal, venue.unit_id, venue.commune_path):
        return None
    return venue


async def venues_of(session: AsyncSession, unit_id: UUID) -> list[Venue]:
    rows = await session.execute(select(Venue).where(Venue.unit_id == unit_id).order_by(Venue.created_at, Venue.name))
    return list(rows.scalars())


async def venues_in_area(session: AsyncSession, principal: Principal, area: str) -> list[tuple[Unit, Venue]]:
    """Active venues (with their unit) of ``area`` visible to the principal: a commune's posters."""
    rows = await session.execute(
        select(Unit, Venue).join(Venue, Venue.unit_id == Unit.id)
        .where(access.scope(principal, Venue.unit_id, Venue.commune_path), Venue.active.is_(True),
               or_(Venue.commune_path == area, Venue.commune_path.like(_escape(area) + "/%", escape="\\")))
        .order_by(Unit.name, Venue.created_at))
    return [(u, v) for u, v in rows.all()]


def _state(unit: Unit, venue: Venue) -> dict:
    return {"venue_id": venue.id, "code": venue.code, "unit_id": unit.id, "unit_name": unit.name, "name": venue.name,
            "address": venue.address, "commune_path": venue.commune_path, "active": venue.active}


def _check(principal: Principal, unit: Unit) -> None:
    if not access.may_manage_venues(principal, unit.id, unit.commune_path):
        raise VenueActionRefused("not_allowed")


def _typed(value: str, code: str, check=typed.short_text) -> str:  # noqa: ANN001
    """The text policy (libs/common/text.py) on what was typed; ``code`` names the field."""
    try:
        return check(value, code)
    except typed.TextRefused:
        raise VenueActionRefused(code) from None


def _clean_name(name: str) -> str:
    name = " ".join(_typed(name, "venue_name_text").split())
    if not 2 <= len(name) <= 200:
        raise VenueActionRefused("venue_name")
    return name


async def add_venue(session: AsyncSession, principal: Principal, unit: Unit, name: str,
                    address: str | None = None) -> Venue:
    _check(principal, unit)
    name = _clean_name(name)
    address = " ".join(_typed(address or "", "venue_address_text").split()) or unit.address
    if len(address) > 300:
        raise VenueActionRefused("venue_address")
    count = (await session.execute(select(func.count()).where(Venue.unit_id == unit.id))).scalar_one()
    if count >= MAX_VENUES:
        raise VenueActionRefused("too_many_venues")
    [code] = await unused_venue_codes(session, 1)
    venue = Venue(unit_id=unit.id, code=code, name=name, address=address, commune_path=unit.commune_path,
                  created_at=datetime.now(UTC))
    session.add(venue)
    audit.record(session, principal, "venue_added", target=name, path=unit.commune_path, unit_id=unit.id)
    await publish(session, VenueCreated(producer="provisioning", jurisdiction=unit.commune_path, data=VenueCreatedData(
        venue_id=venue.id, code=code, unit_id=unit.id, unit_name=unit.name, name=name, address=address,
        commune_path=unit.commune_path)))
    return venue


async def rename_venue(session: AsyncSession, principal: Principal, unit: Unit, venue: Venue, name: str,
                       address: str | None = None) -> None:
    _check(principal, unit)
    name = _clean_name(name)
    address = " ".join(_typed(address or "", "venue_address_text").split()) or venue.address
    if len(address) > 300:
        raise VenueActionRefused("venue_address")
    if (name, address) == (venue.name, venue.address):
        return
    venue.name, venue.address, venue.updated_at = name, address, datetime.now(UTC)
    audit.record(session, principal, "venue_renamed", target=name, path=unit.commune_path, unit_id=unit.id)
    await publish(session, VenueUpdated(producer="provisioning", jurisdiction=unit.commune_path,
                                        data=VenueStateData(**_state(unit, venue))))


async def set_venue_active(session: AsyncSession, principal: Principal, unit: Unit, venue: Venue, active: bool,
                           reason: str = "") -> None:
    _check(principal, unit)
    if venue.active == active:
        return
    reason = " ".join(_typed(reason, "venue_reason_text", typed.free_text).split())[:300]
    venue.active, venue.updated_at = active, datetime.now(UTC)
    venue.disabled_reason = None if active else (reason or None)
    audit.record(session, principal, "venue_enabled" if active else "venue_disabled", target=venue.name,
                 path=unit.commune_path, unit_id=unit.id, detail=reason or None)
    if active:
        event = VenueEnabled(producer="provisioning", jurisdiction=unit.commune_path,
                             data=VenueStateData(**_state(unit, venue)))
    else:
        event = VenueDisabled(producer="provisioning", jurisdiction=unit.commune_path,
                              data=VenueDisabledData(**_state(unit, venue), reason=reason))
    await publish(session, event)


async def rotate_code(session: AsyncSession, principal: Principal, unit: Unit, venue: Venue) -> str:
    """A new code for the venue; the old one is retired and never given out again."""
    _check(principal, unit)
    old = venue.code
    [new] = await unused_venue_codes(session, 1)
    now = datetime.now(UTC)
    session.add(RetiredCode(code=old, venue_id=venue.id, retired_at=now))
    venue.code, venue.updated_at = new, now
    audit.record(session, principal, "venue_code_rotated", target=venue.name, path=unit.commune_path,
                 unit_id=unit.id, detail=f"{old} → {new}")
    await publish(session, VenueCodeRotated(producer="provisioning", jurisdiction=unit.commune_path,
                                            data=VenueCodeRotatedData(**_state(unit, venue), old_code=old)))
    return new
