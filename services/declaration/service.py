"""Use cases of the gate and the consoles. Plain async functions; the caller owns the transaction.

(The declaration hot path is in declare.py.)
"""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from uuid import UUID

from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Forbidden, Principal, Role, within
from libs.common.events.declaration import (
    CaseRaised, CaseRaisedData, PersonDetails, SensitiveDetails, seal_person,
)
from libs.common.fieldcrypt import ring
from libs.common.outbox import publish

from .declare import uuid7, venue_ref
from .directory import VenueInfo
from .places import load_places
from .schemas import kind_of
from .models import RING, Declaration, GateEntry, SuspectedCase, Venue
from .web import today_bounds

GATE_ROLES = (Role.GATE_STAFF, Role.UNIT_ADMIN)


async def venue_by_code(session: AsyncSession, code: str) -> Venue | None:
    return (await session.execute(select(Venue).where(Venue.code == code.strip().upper()))).scalar_one_or_none()


async def venues_visible_to(session: AsyncSession, principal: Principal) -> list[Venue]:
    query = select(Venue).order_by(Venue.unit_name, Venue.name)
    if principal.unit_id:
        query = query.where(Venue.unit_id == UUID(principal.unit_id))
    else:
        query = query.where(within(Venue.commune_path, principal.jurisdiction))
    return list((await session.execute(query.limit(500))).scalars())


async def venue_for_gate(session: AsyncSession, principal: Principal, venue_id: UUID) -> VenueInfo:
    """A venue of the caller's own unit (gate staff and unit administrators only)."""
    if principal.role not in GATE_ROLES or not principal.unit_id:
        raise Forbidden()
    venue = await session.get(Venue, venue_id)
    if venue is None:
        raise HTTPException(404, "Không tìm thấy địa điểm / Unknown venue")
    if str(venue.unit_id) != str(principal.unit_id) or not principal.covers(venue.commune_path):
        raise Forbidden("Địa điểm không thuộc đơn vị của bạn / Not a venue of your unit")
    return VenueInfo.of(venue)


def _insert_ignore(session: AsyncSession, table):  # noqa: ANN001, ANN202
    dialect = session.bind.dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def record_entries(session: AsyncSession, venue: VenueInfo, principal: Principal, entries: list[dict]) -> int:
    """Count people let in; a nonce sent twice (an offline upload repeated) counts once."""
    now = datetime.now(UTC).timestamp()
    rows = [{
        "id": entry["nonce"], "venue_id": venue.venue_id, "unit_id": venue.unit_id,
        "commune_path": venue.commune_path, "declaration_id": entry.get("declaration_id"),
        "at": datetime.fromtimestamp(min(entry.get("at") or now, now), UTC), "result": entry["result"],
        "recorded_by": principal.account_id,
    } for entry in entries]
    statement = _insert_ignore(session, GateEntry.__table__).values(rows).on_conflict_do_nothing(
        index_elements=["id"])
    result = await session.execute(statement)
    return result.rowcount or 0


async def count_today(session: AsyncSession, venue_id: UUID, now: datetime | None = None) -> dict[str, int]:
    start, end = today_bounds(now)
    entries = (await session.execute(
        select(func.count()).select_from(GateEntry)
        .where(GateEntry.venue_id == venue_id, GateEntry.at >= start, GateEntry.at < end))).scalar_one()
    colours = Counter({"green": 0, "yellow": 0, "red": 0})
    rows = await session.execute(
        select(Declaration.result, func.count()).where(
            Declaration.venue_id == venue_id, Declaration.submitted_at >= start, Declaration.submitted_at < end)
        .group_by(Declaration.result))
    for result, count in rows:
        colours[result] = count
    return {"entries": entries, **colours}


async def declared_today(session: AsyncSession, venue_id: UUID, id_number: str,
                         now: datetime | None = None) -> list[Declaration]:
    """The gate's "already declared today?": this person's declarations at this venue today,
    newest first, found through the ID number's blind index (the number is stored encrypted)."""
    start, end = today_bounds(now)
    return list((await session.execute(
        select(Declaration).where(Declaration.id_number_index == ring(RING).index(id_number, "id_number"),
                                  Declaration.venue_id == venue_id, Declaration.submitted_at >= start,
                                  Declaration.submitted_at < end, Declaration.erased_at.is_(None))
        .order_by(Declaration.submitted_at.desc()).limit(5))).scalars())


async def counts_by_venue(session: AsyncSession, venue_ids: list[UUID], now: datetime | None = None) -> dict:
    """Today's declarations by colour for each venue (the officials' overview)."""
    start, end = today_bounds(now)
    found: dict[UUID, Counter] = {v: Counter() for v in venue_ids}
    if not venue_ids:
        return found
    rows = await session.execute(
        select(Declaration.venue_id, Declaration.result, func.count())
        .where(Declaration.venue_id.in_(venue_ids), Declaration.submitted_at >= start, Declaration.submitted_at < end)
        .group_by(Declaration.venue_id, Declaration.result))
    for venue_id, result, count in rows:
        found[venue_id][result] = count
    return found


async def raise_case(session: AsyncSession, venue: VenueInfo, principal: Principal, *, full_name: str,
                     phone: str | None, id_number: str | None, symptoms: list[str], note: str | None,
                     declaration_id: UUID | None, seal_to: bytes) -> SuspectedCase:
    """Gate staff report a suspected case (circular 2.1): stored, and an event for the alerts
    (the person, the symptoms and the note sealed to notification's key ``seal_to``)."""
    now = datetime.now(UTC)
    case = SuspectedCase(
        id=uuid7(), venue_id=venue.venue_id, unit_id=venue.unit_id, commune_path=venue.commune_path, raised_at=now,
        raised_by=principal.account_id, raised_by_name=principal.name or principal.username,
        declaration_id=declaration_id, full_name=full_name, phone=phone, id_number=id_number,
        symptoms=",".join(symptoms), note=note)
    person = PersonDetails(full_name=full_name, phone=phone, id_number=id_number,
                           id_type=kind_of(id_number) if id_number else None)
    declared = await session.get(Declaration, declaration_id) if declaration_id is not None else None
    if declared is not None and declared.erased_at is None:  # its contact details complete what was typed
        person = PersonDetails(
            full_name=full_name, phone=phone or declared.phone, id_number=id_number or declared.id_number,
            id_type=kind_of(id_number) if id_number else declared.id_type, birth_year=declared.birth_year,
            birth_date=declared.birth_date, gender=declared.gender, nationality=declared.nationality,
            street=declared.street, commune_code=declared.commune_code, district_code=declared.district_code,
            province_code=declared.province_code,
            address_label=load_places().label(declared.province_code, declared.district_code, declared.commune_code,
                                              declared.street))
    session.add(case)
    await publish(session, CaseRaised(producer="declaration", jurisdiction=venue.commune_path, data=CaseRaisedData(
        case_id=case.id, venue=venue_ref(venue), commune_path=venue.commune_path, raised_at=now,
        raised_by=principal.account_id, raised_by_name=case.raised_by_name, declaration_id=declaration_id,
        sealed_person=seal_person(seal_to, SensitiveDetails(person=person, symptoms=symptoms, note=note),
                                  "declaration.case_raised", case.id))))
    return case


async def cases_today(session: AsyncSession, venue_id: UUID, now: datetime | None = None) -> list[SuspectedCase]:
    start, end = today_bounds(now)
    return list((await session.execute(
        select(SuspectedCase).where(SuspectedCase.venue_id == venue_id, SuspectedCase.raised_at >= start,
                                    SuspectedCase.raised_at < end)
        .order_by(SuspectedCase.raised_at.desc()).limit(50))).scalars())
