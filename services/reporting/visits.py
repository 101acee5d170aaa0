"""The visits read model: one row per declaration, from ``declaration.submitted``.

What the exposure query, the FHIR export and the retention loop read. ``seq`` is a
monotonic number given on arrival (the incremental export's cursor); ``(venue_id,
submitted_at)`` is indexed for the exposure query. ``full_name`` and ``phone`` are the
only personal data (the event carries nothing else personal, see
libs/common/events/declaration.py); retention sets them to NULL and stamps ``erased_at``,
the row itself (venue, time, screening result) stays for the counts.

Encrypted at rest (issue 17, libs/common/fieldcrypt.py): ``full_name`` and ``phone`` are
stored sealed with reporting's key ring (registered by ``app.create_app``) and opened on
read, so the exposure query, its exports and the FHIR export show them as declared while a
copied disk or backup does not. A case's own visits are looked up by phone
(``case_visits.py``) through ``phone_index``, the blind index of the phone (HMAC under the
ring's index key, of ``normal_phone``), erased with the phone. Rows written before the
change read as they are (without an index) until ``khaibao keys reseal`` rewrites them.

Idempotent: a redelivered declaration (same ``declaration_id``) is ignored. A declaration
replayed after its retention period is erased again by the next retention pass. The
handler is a batch handler (``libs/common/consumer.py``): the new declarations of a
polled batch are written with one insert executed for all of them.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, Uuid, select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.consumer import batch_handler
from libs.common import fieldcrypt
from libs.common.fieldcrypt import SealedString
from libs.common.auth import Principal, Role
from libs.common.events.declaration import DeclarationSubmitted
from libs.common.events.subject import PersonAccessed, PersonErased

from .directory import utc

metadata = MetaData()
RING = "reporting"

visits = Table(
    "visits", metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("declaration_id", Uuid(), nullable=False, unique=True),
    Column("submission_id", Uuid(), nullable=False),
    Column("venue_id", Uuid(), nullable=False),
    Column("venue_code", String(20), nullable=False),
    Column("unit_id", Uuid(), nullable=False),
    Column("commune_path", String(60), nullable=False, index=True),
    Column("submitted_at", DateTime(timezone=True), nullable=False, index=True),
    Column("result", String(10), nullable=False),
    Column("reasons", Text(), nullable=False),
    Column("rule_version", String(40), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("group_size", Integer(), nullable=False),
    Column("full_name", SealedString(RING, "visits.full_name", 200)),
    Column("phone", SealedString(RING, "visits.phone", 30)),
    Column("phone_index", String(32)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("erased_at", DateTime(timezone=True)),
    Index("visits_venue_time", "venue_id", "submitted_at"),
    Index("visits_phone_time", "phone_index", "submitted_at"),
)


def normal_phone(phone: str | None) -> str | None:
    """A phone as compared: digits only, the country code (``+84 913 ...``) read as the
    leading ``0`` (``0913 ...``)."""
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    if digits.startswith("84") and len(digits) > 9:
        digits = "0" + digits[2:]
    return digits or None


def phone_index(phone: str | None) -> str | None:
    """The blind index of a phone under reporting's ring (None without a phone)."""
    return fieldcrypt.ring(RING).index(normal_phone(phone), "phone")


def _insert(session: AsyncSession):  # noqa: ANN202
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(visits)


@batch_handler
async def on_declaration_submitted(session: AsyncSession, events: list[DeclarationSubmitted]) -> None:
    """One row per new declaration, in the order of the events (their ``seq``), with one
    insert executed for all the rows; a declaration already recorded is left alone."""
    received_at = datetime.now(UTC)
    rows: dict[object, dict] = {}
    for event in events:
        data = event.data
        rows.setdefault(data.declaration_id, {
            "declaration_id": data.declaration_id, "submission_id": data.submission_id, "venue_id": data.venue_id,
            "venue_code": data.venue_code, "unit_id": data.unit_id, "commune_path": data.commune_path,
            "submitted_at": utc(data.submitted_at), "result": data.result, "reasons": json.dumps(data.reasons),
            "rule_version": data.rule_version, "channel": data.channel, "group_size": data.group_size,
            "full_name": data.full_name, "phone": data.phone, "phone_index": phone_index(data.phone),
            "received_at": received_at, "erased_at": None})
    if rows:
        await session.execute(_insert(session).on_conflict_do_nothing(index_elements=["declaration_id"]),
                              list(rows.values()))


async def on_person_erased(session: AsyncSession, event: PersonErased) -> None:
    """A person's declarations erased early on their request (issue 17): this copy too.
    Idempotent: a visit already erased keeps its first ``erased_at``."""
    ids = event.data.declaration_ids
    for start in range(0, len(ids), 500):
        await session.execute(visits.update().where(visits.c.declaration_id.in_(ids[start:start + 500]),
                                                    visits.c.erased_at.is_(None))
                              .values(full_name=None, phone=None, phone_index=None, erased_at=datetime.now(UTC)))


async def on_person_accessed(session: AsyncSession, event: PersonAccessed) -> None:
    """A subject request's step (find, export, erase; done or refused) in the access log,
    once however often delivered (its event id is the entry id)."""
    from .accesslog import access_log, record_access

    if (await session.execute(select(access_log.c.seq).where(access_log.c.entry_id == event.id))).first():
        return
    d = event.data
    actor = Principal(account_id=d.actor_id, username=d.actor_username, name=d.actor_name,
                      role=Role(d.actor_role), jurisdiction=d.actor_jurisdiction)
    await record_access(session, actor, d.action, outcome=d.outcome, detail=d.detail, case_reference=d.reference,
                        reason=d.reason, row_count=d.row_count, client_address=d.client_address,
                        now=utc(event.occurred_at), entry_id=event.id)


HANDLERS = {"declaration.submitted": on_declaration_submitted, "declaration.person.erased": on_person_erased,
            "declaration.person.accessed": on_person_accessed}
