"""Use cases of registration: submit (one unit or a whole list), find, list.

Plain async functions; the caller owns the transaction (ARCHITECTURE rule 6). Every
state change writes its event to the outbox in the same transaction (rule 2).
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
from uuid import UUID, uuid4

from sqlalchemy import func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.auth import Principal, within
from libs.common.events.intake import (
    RegistrationExempted,
    RegistrationExemptedData,
    RegistrationSubmitted,
    RegistrationSubmittedData,
)
from libs.common.outbox import publish

from .models import Registration, RegistrationHistory
from .routing import (  # noqa: F401 - UNIT_TYPES is part of this module's interface
    CLOSED,
    EXEMPT,
    SUBMITTED,
    UNIT_TYPES,
    NotACommune,
    commune_and_district,
    receiver_path,
)
from .schemas import RegistrationIn
from .text import Msg, is_late, local_date, now_utc
from .validation import BAD_FORM_VENUES, Identity, UnitDetails

# Crockford's base32 without look-alikes: references are read out over the phone.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_CHUNK = 500
INSERT_CHUNK = 1000


class RegistrationRejected(ValueError):
    """Input that passed the schema but not the domain rules (shown to the user as is)."""

    def __init__(self, message: Msg | str):
        self.msg = message if isinstance(message, Msg) else Msg(message, message)
        super().__init__(self.msg.both())


def new_reference(today: date, prefix: str = "DK", length: int = 6) -> str:
    """``DK210615-7KQ2M9``: the prefix, the day, six random characters (30 random bits)."""
    bits = int.from_bytes(secrets.token_bytes(4), "big")
    return f"{prefix}{today:%y%m%d}-{''.join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(length))}"


async def unique_references(session: AsyncSession, column, count: int, at: datetime, prefix: str) -> list[str]:  # noqa: ANN001
    """``count`` references not yet used in ``column`` (checked, since a day of imports can
    hold thousands and six random characters are not unique by luck alone), dated with the
    day in the city at ``at`` (from midnight to 07:00 the UTC date is still yesterday's)."""
    today = local_date(at)
    chosen: set[str] = set()
    while len(chosen) < count:
        fresh = {new_reference(today, prefix) for _ in range(count - len(chosen))} - chosen
        fresh_list = sorted(fresh)
        taken: set[str] = set()
        for start in range(0, len(fresh_list), REFERENCE_CHUNK):
            chunk = fresh_list[start:start + REFERENCE_CHUNK]
            taken.update((await session.execute(select(column).where(column.in_(chunk)))).scalars())
        chosen |= fresh - taken
    return sorted(chosen)


@dataclass(frozen=True)
class Actor:
    """Who did something: an official (name and office) or the unit itself."""

    name: str
    path: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.name or principal.username, principal.jurisdiction)


def submitted_event(registration: Registration | SimpleNamespace) -> RegistrationSubmitted:
    return RegistrationSubmitted(
        producer="intake", jurisdiction=registration.commune_path,
        data=RegistrationSubmittedData(
            registration_id=registration.id, reference=registration.reference,
            unit_name=registration.unit_name, unit_type=registration.unit_type,
            address=registration.address, commune_path=registration.commune_path,
            receiver=registration.receiver, tax_code=registration.tax_code,
            contact_name=registration.contact_name, contact_position=registration.contact_position,
            contact_phone=registration.contact_phone, contact_email=registration.contact_email,
            venue_count=registration.venue_count, late=registration.late, notes=registration.notes,
            source=registration.source,
        ),
    )


def history(registration: Registration, action: str, at: datetime, actor: Actor | None,
            note: str | None = None) -> RegistrationHistory:
    return RegistrationHistory(registration_id=registration.id, at=at, action=action,
                               actor=actor.name if actor else None, actor_path=actor.path if actor else None,
                               note=note)


async def register_units(session: AsyncSession, units: Sequence[UnitDetails], *, deadline: date | None,
                         source: str = "form", received_at: datetime | None = None, upload_id: UUID | None = None,
                         actor: Actor | None = None, now: datetime | None = None, client_address: str | None = None,
                         spam_reasons: str | None = None) -> list[SimpleNamespace]:
    """Register units, each routed to its receiving focal point (point 1.2).

    ``received_at`` is when the unit sent its details (an e-mailed list reviewed later is
    late only if the mail came after the deadline). A unit listed as exempt is recorded
    with its reason and never forwarded. Rows are inserted in bulk (a list may hold
    thousands); the answer holds each new registration's columns as attributes.
    ``client_address`` and ``spam_reasons`` come from the public edge (spam.py).
    """
    now = now or now_utc()
    received_at = received_at or now
    late = is_late(received_at, deadline)
    references = await unique_references(session, Registration.reference, len(units), now, "DK")
    who = (actor.name, actor.path) if actor else (None, None)
    rows, history_rows, events = [], [], []
    for details, reference in zip(units, references, strict=True):
        exemption = details.exemption
        row = {
            "id": uuid4(), "reference": reference, "status_token": secrets.token_urlsafe(16),
            "unit_name": details.unit_name, "unit_type": details.unit_type.code, "address": details.address,
            "commune_path": details.commune.path, "district_path": details.district.path,
            "receiver": details.unit_type.receiver, "receiver_path": receiver_path(details.unit_type, details.commune),
            "tax_code": details.tax_code, "contact_name": details.contact_name,
            "contact_position": details.contact_position, "contact_phone": details.contact_phone,
            "contact_email": details.contact_email, "venue_count": details.venue_count, "notes": details.notes,
            "source": source, "upload_id": upload_id, "name_key": details.name_key, "address_key": details.address_key,
            "status": EXEMPT if exemption else SUBMITTED, "late": late, "submitted_at": received_at,
            "reviewed_at": now if exemption else None, "reviewed_by": who[0] if exemption else None,
            "review_reason": None, "duplicate_of": None, "exempt_reason": exemption.code if exemption else None,
            "list_id": None, "sent_at": None, "batch_id": None, "forwarded_at": None, "updated_at": now,
            "client_address": client_address, "spam_reasons": spam_reasons,
        }
        rows.append(row)
        registration = SimpleNamespace(**row)
        history_rows.append({"registration_id": row["id"], "at": received_at, "action": "submitted",
                             "actor": who[0], "actor_path": who[1], "note": None})
        events.append(submitted_event(registration))
        if exemption is not None:
            history_rows.append({"registration_id": row["id"], "at": now, "action": "exempt", "actor": who[0],
                                 "actor_path": who[1], "note": exemption.label_vi})
            events.append(RegistrationExempted(
                producer="intake", jurisdiction=row["commune_path"],
                data=RegistrationExemptedData(registration_id=row["id"], reference=reference,
                                              commune_path=row["commune_path"], reason=exemption.code)))
    connection = await session.connection()  # Core executemany: no ORM bookkeeping per row
    for start in range(0, len(rows), INSERT_CHUNK):
        await connection.execute(insert(Registration.__table__), rows[start:start + INSERT_CHUNK])
    for start in range(0, len(history_rows), INSERT_CHUNK):
        await connection.execute(insert(RegistrationHistory.__table__), history_rows[start:start + INSERT_CHUNK])
    await publish(session, *events)
    return [SimpleNamespace(**row) for row in rows]


async def submit_registration(session: AsyncSession, tree: AdminTree, data: RegistrationIn, *,
                              deadline: date | None, now: datetime | None = None, settings=None,  # noqa: ANN001
                              client_address: str | None = None) -> SimpleNamespace:
    """The JSON API's registration (the unit's own, no sign-in). With ``settings``, the
    registration spam limits and heuristics apply (spam.py)."""
    from .routing import UNIT_TYPES as types

    unit_type = types.get(data.unit_type)
    if unit_type is None:
        raise RegistrationRejected(Msg("Loại đơn vị không hợp lệ", "Unknown unit type"))
    try:
        commune, district = commune_and_district(tree, data.commune_code)
    except NotACommune:
        raise RegistrationRejected(Msg("Phường/xã không thuộc thành phố", "Unknown commune")) from None
    details = UnitDetails(
        unit_name=data.unit_name, unit_type=unit_type, address=data.address, commune=commune, district=district,
        tax_code=data.tax_code.upper() if data.tax_code else None, contact_name=data.contact_name,
        contact_position=data.contact_position, contact_phone=data.contact_phone,
        contact_email=data.contact_email.lower() if data.contact_email else None, venue_count=data.venue_count,
        notes=data.notes,
    )
    spam_reasons = None
    if settings is not None:
        from .registration.spam import screen

        if details.venue_count > settings.max_form_venues:
            raise RegistrationRejected(BAD_FORM_VENUES.format(max=settings.max_form_venues))
        spam_reasons = await screen(session, settings, details, client_address=client_address, now=now)
    [registration] = await register_units(session, [details], deadline=deadline, source="form", now=now,
                                          client_address=client_address, spam_reasons=spam_reasons)
    return registration


# --- duplicates -----------------------------------------------------------------------

@dataclass(frozen=True)
class Existing:
    id: UUID
    reference: str
    district_path: str
    commune_path: str


async def existing_duplicates(session: AsyncSession, units: Sequence[UnitDetails | Identity],
                              ) -> tuple[dict[str, Existing], dict[tuple[str, str, str], Existing]]:
    """Open registrations (not returned, not already a duplicate) that these units repeat:
    by tax code (city-wide), and by name and address within the same commune."""
    by_tax: dict[str, Existing] = {}
    by_name: dict[tuple[str, str, str], Existing] = {}
    open_ = Registration.status.not_in(CLOSED)
    columns = (Registration.id, Registration.reference, Registration.district_path, Registration.commune_path)
    taxes = sorted({u.tax_code for u in units if u.tax_code})
    for start in range(0, len(taxes), REFERENCE_CHUNK):
        rows = await session.execute(select(*columns, Registration.tax_code).where(
            Registration.tax_code.in_(taxes[start:start + REFERENCE_CHUNK]), open_))
        for row in rows:
            by_tax.setdefault(row.tax_code, Existing(*row[:4]))
    wanted = {(u.commune.path, u.name_key, u.address_key) for u in units if u.commune is not None}
    names = sorted({u.name_key for u in units if u.commune is not None})
    for start in range(0, len(names), REFERENCE_CHUNK):
        rows = await session.execute(select(*columns, Registration.name_key, Registration.address_key).where(
            Registration.name_key.in_(names[start:start + REFERENCE_CHUNK]), open_))
        for row in rows:
            key = (row.commune_path, row.name_key, row.address_key)
            if key in wanted:
                by_name.setdefault(key, Existing(*row[:4]))
    return by_tax, by_name


async def possible_duplicates(session: AsyncSession, registration: Registration) -> list[Registration]:
    """Other open registrations with the same tax code, or the same name and address in the commune."""
    same = [(Registration.commune_path == registration.commune_path)
            & (Registration.name_key == registration.name_key)
            & (Registration.address_key == registration.address_key)]
    if registration.tax_code:
        same.append(Registration.tax_code == registration.tax_code)
    rows = await session.execute(select(Registration).where(
        or_(*same), Registration.id != registration.id, Registration.status.not_in(CLOSED),
        Registration.district_path == registration.district_path,
    ).order_by(Registration.submitted_at).limit(10))
    return list(rows.scalars())


# --- reading --------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    status: str | None = None
    commune: str | None = None      # a path within the caller's jurisdiction
    to_me: bool = False              # only those the caller receives
    query: str | None = None         # reference, name or tax code
    late: bool = False
    hide_suspected: bool = True      # suspected spam waits in its own tab (spam.py)


def _filtered(principal: Principal, filters: Filters):  # noqa: ANN202
    statement = select(Registration).where(within(Registration.commune_path, principal.jurisdiction))
    if filters.status == "sent":
        statement = statement.where(Registration.list_id.is_not(None), Registration.batch_id.is_(None))
    elif filters.status == "forwarded":
        statement = statement.where(Registration.batch_id.is_not(None))
    elif filters.status:
        statement = statement.where(Registration.status == filters.status)
    if filters.commune:
        statement = statement.where(within(Registration.commune_path, filters.commune))
    if filters.to_me:
        statement = statement.where(Registration.receiver_path == principal.jurisdiction)
    if filters.late:
        statement = statement.where(Registration.late.is_(True))
    if filters.hide_suspected:
        statement = statement.where(or_(Registration.spam_reasons.is_(None), Registration.status != SUBMITTED,
                                        Registration.list_id.is_not(None)))
    if filters.query:
        from .text import fold

        needle = filters.query.strip()
        statement = statement.where(or_(Registration.reference == needle.upper(),
                                        Registration.tax_code == needle.upper(),
                                        Registration.name_key.contains(fold(needle))))
    return statement


async def list_registrations(session: AsyncSession, principal: Principal, *, limit: int = 200, offset: int = 0,
                             filters: Filters | None = None) -> list[Registration]:
    """Registrations of units located in the caller's jurisdiction, newest first."""
    statement = _filtered(principal, filters or Filters())
    rows = await session.execute(statement.order_by(Registration.submitted_at.desc(), Registration.reference)
                                 .limit(limit).offset(offset))
    return list(rows.scalars())


async def count_registrations(session: AsyncSession, principal: Principal, filters: Filters | None = None) -> int:
    statement = _filtered(principal, filters or Filters()).with_only_columns(func.count())
    return (await session.execute(statement)).scalar_one()


async def get_registration(session: AsyncSession, principal: Principal, registration_id: UUID) -> Registration | None:
    """One registration if it is within the caller's jurisdiction (else None, as if absent)."""
    registration = await session.get(Registration, registration_id)
    if registration is None or not principal.covers(registration.commune_path):
        return None
    return registration


async def registration_history(session: AsyncSession, registration_id: UUID) -> list[RegistrationHistory]:
    rows = await session.execute(select(RegistrationHistory).where(
        RegistrationHistory.registration_id == registration_id).order_by(RegistrationHistory.at,
                                                                          RegistrationHistory.id))
    return list(rows.scalars())


async def find_by_token(session: AsyncSession, reference: str, token: str) -> Registration | None:
    """The unit's own status page: the reference and the random token of its link."""
    registration = (await session.execute(select(Registration).where(
        Registration.reference == reference.upper()))).scalar_one_or_none()
    if registration is None or not secrets.compare_digest(registration.status_token.encode(), token.encode()):
        return None
    return registration


async def find_by_reference_and_phone(session: AsyncSession, reference: str, phone: str) -> Registration | None:
    """For a unit that lost its link: the reference and the contact phone it gave."""
    registration = (await session.execute(select(Registration).where(
        Registration.reference == reference.strip().upper()))).scalar_one_or_none()
    if registration is None or not secrets.compare_digest(registration.contact_phone.encode(), phone.encode()):
        return None
    return registration
