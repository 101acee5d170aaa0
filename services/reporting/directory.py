"""The directory read model: venues and units as provisioning announced them.

Built only from ``provisioning.venue.created/updated/disabled/enabled/code_rotated``
(every one carries the venue's whole state). Each event is an upsert that only replaces
a row with an older ``occurred_at``, so redelivery and out-of-order arrival (a replay, a
partition lagging) leave the newest state; the unit's name comes with its venues. One
batch handler (``libs/common/consumer.py``) takes them all: the newest event of a batch
per venue and per unit is written with one upsert executed for all of them.

Helpers for the other read models and pages of this service (all filter nothing by
themselves except where they take a ``jurisdiction``):

- ``venue_names(session, ids) -> {venue_id: name}``
- ``venues_by_id(session, ids) -> {venue_id: VenueInfo}``
- ``venue_by_code(session, code) -> VenueInfo | None`` (code as printed or typed)
- ``venues_within(session, jurisdiction, *, active_only=False) -> list[VenueInfo]``
- ``units_within(session, jurisdiction) -> list[UnitInfo]``
- ``unit_names(session, ids) -> {unit_id: name}``
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, Uuid, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import within
from libs.common.consumer import batch_handler
from libs.common.events import provisioning as events
from libs.common.events.provisioning import normalise_venue_code

metadata = MetaData()

venues = Table(
    "directory_venues", metadata,
    Column("venue_id", Uuid(), primary_key=True),
    Column("code", String(20), nullable=False, index=True),
    Column("name", String(300), nullable=False),
    Column("address", String(500), nullable=False),
    Column("unit_id", Uuid(), nullable=False, index=True),
    Column("unit_name", String(300), nullable=False),
    Column("commune_path", String(60), nullable=False, index=True),
    Column("active", Boolean(), nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

units = Table(
    "directory_units", metadata,
    Column("unit_id", Uuid(), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("commune_path", String(60), nullable=False, index=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class VenueInfo:
    venue_id: UUID
    code: str
    name: str
    address: str
    unit_id: UUID
    unit_name: str
    commune_path: str
    active: bool
    changed_at: datetime


@dataclass(frozen=True)
class UnitInfo:
    unit_id: UUID
    name: str
    commune_path: str
    changed_at: datetime


def utc(moment: datetime) -> datetime:
    """Aware UTC (SQLite gives naive UTC back; events carry aware times)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _insert(session: AsyncSession, table: Table):  # noqa: ANN202
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(table)


VENUE_CREATED = "provisioning.venue.created"


def _newest(rows: list[dict], key: str) -> list[dict]:
    """Per ``key``, the row the events one by one would leave: the newest ``changed_at``, the
    later event on a tie (an event replaces a row as old as itself)."""
    newest: dict[object, dict] = {}
    for row in rows:
        kept = newest.get(row[key])
        if kept is None or kept["changed_at"] <= row["changed_at"]:
            newest[row[key]] = row
    return list(newest.values())


@batch_handler
async def on_venue_event(session: AsyncSession, batch: list[events.VenueCreated | events.VenueUpdated
                                                            | events.VenueDisabled | events.VenueEnabled
                                                            | events.VenueCodeRotated]) -> None:
    """Every venue event carries the venue's whole state: the newest one per venue and per
    unit is written (one upsert executed for all the rows), over rows that are not newer."""
    rows = []
    created_at: dict[object, datetime] = {}
    for event in batch:
        data, at = event.data, utc(event.occurred_at)
        created = event.type == VENUE_CREATED
        rows.append({"venue_id": data.venue_id, "code": normalise_venue_code(data.code), "name": data.name,
                     "address": data.address, "unit_id": data.unit_id, "unit_name": data.unit_name,
                     "commune_path": data.commune_path, "active": True if created else data.active,
                     "created_at": None, "changed_at": at})
        if created:  # the latest creation counts, whatever its age
            created_at[data.venue_id] = at
    venue_rows = [{**row, "created_at": created_at.get(row["venue_id"])} for row in _newest(rows, "venue_id")]
    statement = _insert(session, venues)
    newer = venues.c.changed_at <= statement.excluded.changed_at
    changes = {name: case((newer, statement.excluded[name]), else_=venues.c[name])
               for name in ("code", "name", "address", "unit_id", "unit_name", "commune_path", "active")}
    changes["changed_at"] = case((newer, statement.excluded.changed_at), else_=venues.c.changed_at)
    changes["created_at"] = func.coalesce(statement.excluded.created_at, venues.c.created_at)
    await session.execute(statement.on_conflict_do_update(index_elements=["venue_id"], set_=changes), venue_rows)

    unit_rows = [{"unit_id": row["unit_id"], "name": row["unit_name"], "commune_path": row["commune_path"],
                  "changed_at": row["changed_at"]} for row in _newest(rows, "unit_id")]
    unit = _insert(session, units)
    unit_newer = units.c.changed_at <= unit.excluded.changed_at
    await session.execute(unit.on_conflict_do_update(index_elements=["unit_id"], set_={
        "name": case((unit_newer, unit.excluded.name), else_=units.c.name),
        "commune_path": case((unit_newer, unit.excluded.commune_path), else_=units.c.commune_path),
        "changed_at": case((unit_newer, unit.excluded.changed_at), else_=units.c.changed_at),
    }), unit_rows)


HANDLERS = {
    VENUE_CREATED: on_venue_event,
    "provisioning.venue.updated": on_venue_event,
    "provisioning.venue.disabled": on_venue_event,
    "provisioning.venue.enabled": on_venue_event,
    "provisioning.venue.code_rotated": on_venue_event,
}


# --- queries -----------------------------------------------------------------------------

def _venue(row) -> VenueInfo:  # noqa: ANN001
    return VenueInfo(row.venue_id, row.code, row.name, row.address, row.unit_id, row.unit_name,
                     row.commune_path, bool(row.active), utc(row.changed_at))


_VENUE_COLUMNS = (venues.c.venue_id, venues.c.code, venues.c.name, venues.c.address, venues.c.unit_id,
                  venues.c.unit_name, venues.c.commune_path, venues.c.active, venues.c.changed_at)


async def venue_names(session: AsyncSession, ids: Iterable[UUID]) -> dict[UUID, str]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(select(venues.c.venue_id, venues.c.name).where(venues.c.venue_id.in_(wanted)))
    return {venue_id: name for venue_id, name in rows}


async def venues_by_id(session: AsyncSession, ids: Iterable[UUID]) -> dict[UUID, VenueInfo]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(select(*_VENUE_COLUMNS).where(venues.c.venue_id.in_(wanted)))
    return {row.venue_id: _venue(row) for row in rows}


async def venue_by_code(session: AsyncSession, code: str) -> VenueInfo | None:
    normalised = normalise_venue_code(code)
    if not normalised:
        return None
    row = (await session.execute(select(*_VENUE_COLUMNS).where(venues.c.code == normalised))).first()
    return _venue(row) if row else None


async def venues_within(session: AsyncSession, jurisdiction: str, *, active_only: bool = False,
                        limit: int | None = None) -> list[VenueInfo]:
    query = select(*_VENUE_COLUMNS).where(within(venues.c.commune_path, jurisdiction))
    if active_only:
        query = query.where(venues.c.active.is_(True))
    query = query.order_by(venues.c.unit_name, venues.c.name, venues.c.venue_id)
    if limit is not None:
        query = query.limit(limit)
    return [_venue(row) for row in await session.execute(query)]


async def units_within(session: AsyncSession, jurisdiction: str) -> list[UnitInfo]:
    rows = await session.execute(select(units).where(within(units.c.commune_path, jurisdiction))
                                 .order_by(units.c.name, units.c.unit_id))
    return [UnitInfo(r.unit_id, r.name, r.commune_path, utc(r.changed_at)) for r in rows]


async def unit_names(session: AsyncSession, ids: Iterable[UUID]) -> dict[UUID, str]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(select(units.c.unit_id, units.c.name).where(units.c.unit_id.in_(wanted)))
    return {unit_id: name for unit_id, name in rows}
