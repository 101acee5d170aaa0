"""Event handlers: one function per event type. Each runs inside the consumer's transaction.

``registration_facts`` counts registrations per area (``registration_counts``);
``registration_funnel`` keeps each registration's latest review state and whether it
was sent to the district and forwarded to the city, for the funnel per commune
(submitted, accepted, returned, duplicate, exempt, forwarded, late). The intake events
of one registration may arrive out of order (a batch travels on another partition than
the review that preceded it): a review only replaces an older one, and the sent and
forwarded flags are set whatever arrives first.
"""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    Boolean, Column, DateTime, MetaData, String, Table, Uuid, case, func, or_, select, true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import within
from libs.common.events.intake import (
    BatchForwarded,
    ListSent,
    RegistrationAccepted,
    RegistrationExempted,
    RegistrationMarkedDuplicate,
    RegistrationReturned,
    RegistrationSubmitted,
)

from .models import RegistrationFact

funnel = Table(
    "registration_funnel", MetaData(),
    Column("registration_id", Uuid(), primary_key=True),
    Column("commune_path", String(60), nullable=False),
    Column("receiver", String(10)),
    Column("submitted", Boolean(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("status_at", DateTime(timezone=True)),
    Column("exempt_reason", String(40)),
    Column("late", Boolean(), nullable=False),
    Column("sent", Boolean(), nullable=False),
    Column("forwarded", Boolean(), nullable=False),
)
FUNNEL_STATES = ("submitted", "accepted", "returned", "duplicate", "exempt")


def _insert(session: AsyncSession):  # noqa: ANN202
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(funnel)


async def _upsert(session: AsyncSession, registration_id: UUID, commune_path: str, **changes: object) -> None:
    """Create the row with ``changes`` or apply them to the existing one."""
    row = {"registration_id": registration_id, "commune_path": commune_path, "receiver": None, "submitted": False,
           "status": "submitted", "status_at": None, "exempt_reason": None, "late": False, "sent": False,
           "forwarded": False, **changes}
    statement = _insert(session).values(**row)
    await session.execute(statement.on_conflict_do_update(index_elements=["registration_id"], set_=changes))


async def _review(session: AsyncSession, registration_id: UUID, commune_path: str, status: str, at: datetime,
                  exempt_reason: str | None = None) -> None:
    """A review replaces the state only if it is newer than the one recorded."""
    statement = _insert(session).values(
        registration_id=registration_id, commune_path=commune_path, receiver=None, submitted=False, status=status,
        status_at=at, exempt_reason=exempt_reason, late=False, sent=False, forwarded=False)
    newer = or_(funnel.c.status_at.is_(None), funnel.c.status_at <= statement.excluded.status_at)
    await session.execute(statement.on_conflict_do_update(
        index_elements=["registration_id"],
        set_={"status": case((newer, statement.excluded.status), else_=funnel.c.status),
              "exempt_reason": case((newer, statement.excluded.exempt_reason), else_=funnel.c.exempt_reason),
              "status_at": case((newer, statement.excluded.status_at), else_=funnel.c.status_at)}))


async def on_registration_submitted(session: AsyncSession, event: RegistrationSubmitted) -> None:
    data = event.data
    await session.merge(RegistrationFact(
        registration_id=data.registration_id, commune_path=data.commune_path, unit_type=data.unit_type,
        receiver=data.receiver, late=data.late, submitted_at=event.occurred_at,
    ))
    statement = _insert(session).values(
        registration_id=data.registration_id, commune_path=data.commune_path, receiver=data.receiver, submitted=True,
        status="submitted", status_at=event.occurred_at, exempt_reason=None, late=data.late, sent=False,
        forwarded=False)
    # A review seen earlier (out of order) keeps its state: only the submission facts are filled in.
    await session.execute(statement.on_conflict_do_update(
        index_elements=["registration_id"],
        set_={"receiver": data.receiver, "submitted": True, "late": data.late, "commune_path": data.commune_path}))


async def on_registration_accepted(session: AsyncSession, event: RegistrationAccepted) -> None:
    await _review(session, event.data.registration_id, event.data.commune_path, "accepted", event.occurred_at)


async def on_registration_returned(session: AsyncSession, event: RegistrationReturned) -> None:
    await _review(session, event.data.registration_id, event.data.commune_path, "returned", event.occurred_at)


async def on_registration_duplicate(session: AsyncSession, event: RegistrationMarkedDuplicate) -> None:
    await _review(session, event.data.registration_id, event.data.commune_path, "duplicate", event.occurred_at)


async def on_registration_exempted(session: AsyncSession, event: RegistrationExempted) -> None:
    await _review(session, event.data.registration_id, event.data.commune_path, "exempt", event.occurred_at,
                  exempt_reason=event.data.reason)


async def on_list_sent(session: AsyncSession, event: ListSent) -> None:
    for registration_id in event.data.registration_ids:
        await _upsert(session, registration_id, event.data.commune_path, sent=True)


async def on_batch_forwarded(session: AsyncSession, event: BatchForwarded) -> None:
    for unit in event.data.units:
        await _upsert(session, unit.registration_id, unit.commune_path, forwarded=True)


async def funnel_counts(session: AsyncSession, jurisdiction: str) -> dict[str, dict[str, int]]:
    """Per commune within ``jurisdiction``: submitted, accepted, returned, duplicate, exempt,
    sent (to the district), forwarded (to the city) and late. For the reporting pages."""
    def count(condition) -> object:  # noqa: ANN001
        return func.sum(case((condition, 1), else_=0))

    rows = await session.execute(select(
        funnel.c.commune_path, count(funnel.c.submitted == true()),
        *(count((funnel.c.status == state) & (funnel.c.submitted == true())) for state in FUNNEL_STATES[1:]),
        count(funnel.c.sent == true()), count(funnel.c.forwarded == true()),
        count((funnel.c.late == true()) & (funnel.c.submitted == true())),
    ).where(within(funnel.c.commune_path, jurisdiction)).group_by(funnel.c.commune_path))
    names = ("submitted", "accepted", "returned", "duplicate", "exempt", "sent", "forwarded", "late")
    return {path: dict(zip(names, (int(v or 0) for v in values), strict=True)) for path, *values in rows}



HANDLERS = {
    "intake.registration.submitted": on_registration_submitted,
    "intake.registration.accepted": on_registration_accepted,
    "intake.registration.returned": on_registration_returned,
    "intake.registration.duplicate_marked": on_registration_duplicate,
    "intake.registration.exempted": on_registration_exempted,
    "intake.list.sent": on_list_sent,
    "intake.batch.forwarded": on_batch_forwarded,
}
