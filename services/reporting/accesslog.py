"""The access log: every read or export of personal data by an official, and every refusal.

One row per action with who (account, name, role, jurisdiction; an interoperability
client is a who too), what (``action``: e.g. ``exposure.query``, ``exposure.export``,
``fhir.read``, ``ncovi.import``), why (``purpose``, case reference and reason), where (``scope_path``: the commune path of the venue concerned,
or the caller's node), which venue or declaration, the time window, how many rows were
returned, the client address the request came from, and the outcome (``ok`` or
``refused`` with a short ``detail`` code: ``no_case_reference``, ``no_reason``,
``bad_input``, ``unknown_venue``, ``unknown_declaration``, ``outside_jurisdiction``,
``role_not_permitted``, ...). A refusal is written in a transaction of its own, so that it
stays although the request fails (``record_refusal``).

It never holds a visitor's personal data: no name, phone or ID of the people found, only
their count. It is kept when retention erases the visits.

Readable by officials within their jurisdiction: the city reads every entry, a district
the entries of its officials and of its venues (``entries_within``). Other read models of
this service (exports of the dashboards) write here with ``record_access``.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Uuid, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, within

from .directory import utc

metadata = MetaData()

access_log = Table(
    "access_log", metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("entry_id", Uuid(), nullable=False, unique=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor_id", String(64), nullable=False),
    Column("actor_username", String(120), nullable=False),
    Column("actor_name", String(200), nullable=False),
    Column("actor_role", String(30), nullable=False),
    Column("actor_jurisdiction", String(60), nullable=False, index=True),
    Column("action", String(40), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("detail", String(60)),
    Column("case_reference", String(80)),
    Column("reason", String(500)),
    Column("scope_path", String(60), nullable=False, index=True),
    Column("venue_id", Uuid()),
    Column("venue_name", String(300)),
    Column("declaration_id", Uuid()),
    Column("window_start", DateTime(timezone=True)),
    Column("window_end", DateTime(timezone=True)),
    Column("row_count", Integer(), nullable=False),
    Column("purpose", String(40)),
    Column("client_address", String(64)),
    Index("access_log_outcome", "outcome"),
)


@dataclass(frozen=True)
class AccessEntry:
    entry_id: UUID
    at: datetime
    actor_username: str
    actor_name: str
    actor_role: str
    actor_jurisdiction: str
    action: str
    outcome: str
    detail: str | None
    case_reference: str | None
    reason: str | None
    scope_path: str
    venue_id: UUID | None
    venue_name: str | None
    declaration_id: UUID | None
    window_start: datetime | None
    window_end: datetime | None
    row_count: int
    seq: int
    purpose: str | None = None
    client_address: str | None = None


async def record_access(session: AsyncSession, principal: Principal, action: str, *, scope_path: str | None = None,
                        outcome: str = "ok", detail: str | None = None, case_reference: str | None = None,
                        reason: str | None = None, venue_id: UUID | None = None, venue_name: str | None = None,
                        declaration_id: UUID | None = None, window_start: datetime | None = None,
                        window_end: datetime | None = None, row_count: int = 0,
                        now: datetime | None = None, purpose: str | None = None,
                        client_address: str | None = None, entry_id: UUID | None = None) -> UUID:
    """Write one entry in the caller's transaction (it must commit, also for a refusal).
    ``client_address``: as ``libs.common.ratelimit.client_address`` derives it."""
    entry_id = entry_id or uuid.uuid4()
    await session.execute(access_log.insert().values(
        entry_id=entry_id, at=now or datetime.now(UTC), actor_id=principal.account_id,
        actor_username=principal.username[:120], actor_name=principal.name[:200], actor_role=str(principal.role),
        actor_jurisdiction=principal.jurisdiction, action=action, outcome=outcome, detail=detail,
        case_reference=case_reference[:80] if case_reference else None, reason=reason[:500] if reason else None,
        scope_path=scope_path or principal.jurisdiction, venue_id=venue_id,
        venue_name=venue_name[:300] if venue_name else None, declaration_id=declaration_id,
        window_start=window_start, window_end=window_end, row_count=row_count, purpose=purpose,
        client_address=client_address[:64] if client_address else None,
    ))
    return entry_id


def _visible(jurisdiction: str):  # noqa: ANN202
    return or_(within(access_log.c.actor_jurisdiction, jurisdiction), within(access_log.c.scope_path, jurisdiction))


def _entry(row) -> AccessEntry:  # noqa: ANN001
    return AccessEntry(
        row.entry_id, utc(row.at), row.actor_username, row.actor_name, row.actor_role, row.actor_jurisdiction,
        row.action, row.outcome, row.detail, row.case_reference, row.reason, row.scope_path, row.venue_id,
        row.venue_name, row.declaration_id, utc(row.window_start) if row.window_start else None,
        utc(row.window_end) if row.window_end else None, row.row_count, row.seq, row.purpose,
        row.client_address)


async def entries_within(session: AsyncSession, jurisdiction: str, *, limit: int = 50, offset: int = 0,
                         action: str | None = None, case_reference: str | None = None,
                         outcome: str | None = None) -> tuple[list[AccessEntry], int]:
    """Entries by officials of ``jurisdiction`` or about venues in it, newest first; and their total."""
    condition = _visible(jurisdiction)
    if outcome:
        condition = condition & (access_log.c.outcome == outcome)
    if action:
        condition = condition & (access_log.c.action == action)
    if case_reference:
        condition = condition & (access_log.c.case_reference == case_reference)
    total = (await session.execute(select(func.count()).select_from(access_log).where(condition))).scalar_one()
    rows = await session.execute(select(access_log).where(condition)
                                 .order_by(access_log.c.at.desc(), access_log.c.seq.desc()).limit(limit).offset(offset))
    return [_entry(r) for r in rows], int(total)


async def entries_after(session: AsyncSession, jurisdiction: str, after_seq: int, limit: int, *,
                        since: datetime | None = None) -> list[AccessEntry]:
    """For the incremental FHIR export: entries visible to ``jurisdiction`` with seq > after_seq
    (and written at or after ``since``)."""
    query = select(access_log).where(_visible(jurisdiction), access_log.c.seq > after_seq)
    if since is not None:
        query = query.where(access_log.c.at >= since)
    rows = await session.execute(query.order_by(access_log.c.seq).limit(limit))
    return [_entry(r) for r in rows]


async def record_refusal(database, principal: Principal, action: str, detail: str, **fields) -> None:  # noqa: ANN001, ANN003
    """A refused request's entry, in a transaction of its own (the request's answer is an error)."""
    async with database.transaction() as session:
        await record_access(session, principal, action, outcome="refused", detail=detail, **fields)
