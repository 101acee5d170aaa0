"""The registrations read model of the exports: what each registration says about its
unit, from ``intake.registration.submitted`` (the state comes from the funnel in
``handlers.py``). The contact person's name, phone and e-mail are personal data: the
exports show them only to the roles in ``CONTACT_ROLES`` and log each such export."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Role, within
from libs.common.events.intake import RegistrationSubmitted

from .aggregates import naive_utc
from .handlers import funnel

metadata = MetaData()
details = Table(
    "registration_details", metadata,
    Column("registration_id", Uuid(), primary_key=True),
    Column("reference", String(40), nullable=False),
    Column("unit_name", String(300), nullable=False),
    Column("unit_type", String(40), nullable=False),
    Column("address", String(500), nullable=False),
    Column("commune_path", String(60), nullable=False, index=True),
    Column("contact_name", String(200), nullable=False),
    Column("contact_phone", String(40), nullable=False),
    Column("contact_email", String(200)),
    Column("submitted_at", DateTime(), nullable=False),
)

# Who may see the contact person of a registration: the officials who review and forward it.
CONTACT_ROLES = frozenset({Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL})


async def on_registration_submitted(session: AsyncSession, event: RegistrationSubmitted) -> None:
    data = event.data
    row = {"registration_id": data.registration_id, "reference": data.reference[:40], "unit_name": data.unit_name[:300],
           "unit_type": data.unit_type[:40], "address": data.address[:500], "commune_path": data.commune_path,
           "contact_name": data.contact_name[:200], "contact_phone": data.contact_phone[:40],
           "contact_email": (data.contact_email or None) and data.contact_email[:200],
           "submitted_at": naive_utc(event.occurred_at)}
    insert = (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(details)
    await session.execute(insert.values(**row).on_conflict_do_nothing(index_elements=["registration_id"]))


HANDLERS = {"intake.registration.submitted": on_registration_submitted}


@dataclass(frozen=True)
class RegistrationRow:
    reference: str
    unit_name: str
    unit_type: str
    address: str
    commune_path: str
    status: str
    sent: bool
    forwarded: bool
    late: bool
    submitted_at: datetime
    contact_name: str
    contact_phone: str
    contact_email: str | None


async def registrations_within(session: AsyncSession, jurisdiction: str, limit: int = 100_000) -> list[RegistrationRow]:
    rows = await session.execute(
        select(details.c.reference, details.c.unit_name, details.c.unit_type, details.c.address,
               details.c.commune_path, funnel.c.status, funnel.c.sent, funnel.c.forwarded, funnel.c.late,
               details.c.submitted_at, details.c.contact_name, details.c.contact_phone, details.c.contact_email)
        .join(funnel, funnel.c.registration_id == details.c.registration_id, isouter=True)
        .where(within(details.c.commune_path, jurisdiction))
        .order_by(details.c.commune_path, details.c.submitted_at, details.c.reference).limit(limit))
    return [RegistrationRow(r[0], r[1], r[2], r[3], r[4], r[5] or "submitted", bool(r[6]), bool(r[7]), bool(r[8]),
                            *r[9:]) for r in rows]
