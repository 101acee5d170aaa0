"""Sessions that end: the revocations every service applies to the tokens it verifies.

Tokens stay verifiable offline (an Ed25519 signature, ``auth.py``); what ends a session
before its expiry is a revocation that provisioning publishes (``provisioning.session.revoked``
through its outbox) and applies in its own database in the same transaction:

- one session (sign-out): the token's ``sid`` (``jti`` for a token without one);
- every session of an account issued before ``not_before`` (disabled account, password
  change or reset): a token whose ``iat`` is earlier is refused. The session that changed
  its password gets a fresh token issued at ``not_before`` itself.

Each service keeps them in ``revoked_sessions`` (its consumer upserts them) and holds an
in-memory copy that ``current_principal`` checks with two dictionary look-ups. The copy
comes from the database, so that every web worker of a service refuses the same tokens:
each worker reloads the rows recorded since its last look every
``KHAIBAO_SESSION_REFRESH_SECONDS`` (1 s) and all of them every minute; a worker that
commits a revocation itself (provisioning, or the worker whose consumer applied the event)
applies it at once. An entry is kept until the tokens it targets have expired (``until``),
then dropped.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Double, Index, MetaData, String, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from .db import Database
    from .events.provisioning import SessionRevoked, SessionRevokedData
    from .runtime import Runtime

log = logging.getLogger(__name__)

# Rows recorded this long before the newest one seen are read again: a transaction that
# recorded a row earlier may commit after a later one.
OVERLAP_SECONDS = 30.0
FULL_RELOAD_SECONDS = 60.0
INFO_KEY = "revoked_sessions"  # session.info: revocations to apply in memory after the commit

metadata = MetaData()


def _columns() -> list[Column]:
    return [
        Column("id", String(100), primary_key=True),          # "session:<sid>" or "account:<account id>"
        Column("account_id", String(64), nullable=False),
        Column("session_id", String(64), nullable=True),
        Column("not_before", Double, nullable=True),          # account rows: tokens issued before are refused
        Column("until", Double, nullable=False),              # the targeted tokens have expired by then
        Column("recorded_at", Double, nullable=False),
    ]


revoked_sessions = Table("revoked_sessions", metadata, *_columns(),
                         Index("revoked_sessions_recorded", "recorded_at"),
                         Index("revoked_sessions_until", "until"))


def create_session_tables(op) -> None:  # noqa: ANN001 - alembic.op
    """Called by each service's migration: the revocations it applies."""
    op.create_table("revoked_sessions", *_columns())
    op.create_index("revoked_sessions_recorded", "revoked_sessions", ["recorded_at"])
    op.create_index("revoked_sessions_until", "revoked_sessions", ["until"])


def drop_session_tables(op) -> None:  # noqa: ANN001 - alembic.op
    op.drop_index("revoked_sessions_until", "revoked_sessions")
    op.drop_index("revoked_sessions_recorded", "revoked_sessions")
    op.drop_table("revoked_sessions")


@dataclass(frozen=True)
class Revocation:
    account_id: str
    session_id: str | None
    not_before: float | None
    until: float

    @property
    def key(self) -> str:
        return f"session:{self.session_id}" if self.session_id else f"account:{self.account_id}"


def _greatest(session: AsyncSession, a: Any, b: Any) -> Any:
    return (func.greatest if session.bind.dialect.name == "postgresql" else func.max)(a, b)


async def record(session: AsyncSession, data: SessionRevokedData | Revocation) -> None:
    """Store a revocation (idempotent: an account keeps its latest ``not_before``); it is
    applied in this process's memory once the caller's transaction has committed."""
    entry = Revocation(str(data.account_id), data.session_id, data.not_before, data.until)
    if entry.session_id is None and entry.not_before is None:
        raise ValueError("a revocation names a session or a time")
    insert = (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(revoked_sessions)
    statement = insert.values(id=entry.key, account_id=entry.account_id, session_id=entry.session_id,
                              not_before=entry.not_before, until=entry.until, recorded_at=time.time())
    table = revoked_sessions.c
    changes = {"until": _greatest(session, table.until, statement.excluded.until),
               "recorded_at": statement.excluded.recorded_at}
    if entry.session_id is None:
        changes["not_before"] = _greatest(session, table.not_before, statement.excluded.not_before)
    await session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changes))
    session.info.setdefault(INFO_KEY, []).append(entry)


async def on_session_revoked(session: AsyncSession, event: SessionRevoked) -> None:
    """Consumer handler (every service but provisioning, which records its own)."""
    await record(session, event.data)


HANDLERS = {"provisioning.session.revoked": on_session_revoked}


class SessionRevocations:
    """The in-memory copy one process checks tokens against."""

    def __init__(self) -> None:
        self.sessions: dict[str, float] = {}                   # session id -> until
        self.accounts: dict[str, tuple[float, float]] = {}     # account id -> (not_before, until)
        self.seen_up_to = 0.0
        self.loaded_at = 0.0

    def revoked(self, claims: dict) -> bool:
        """Whether a verified token's session has ended."""
        session_id = claims.get("sid") or claims.get("jti")
        if session_id is not None and str(session_id) in self.sessions:
            return True
        entry = self.accounts.get(str(claims.get("sub")))
        if entry is None:
            return False
        try:
            return float(claims.get("iat", 0)) < entry[0]
        except (TypeError, ValueError):
            return True

    def apply(self, entries: list[Revocation]) -> None:
        for entry in entries:
            if entry.session_id is not None:
                self.sessions[entry.session_id] = max(entry.until, self.sessions.get(entry.session_id, 0.0))
            if entry.not_before is not None:
                not_before, until = self.accounts.get(entry.account_id, (0.0, 0.0))
                self.accounts[entry.account_id] = (max(not_before, entry.not_before), max(until, entry.until))

    def after_commit(self, info: dict) -> None:
        """``Database`` commit hook: this process's own revocations count at once."""
        entries = info.get(INFO_KEY)
        if entries:
            self.apply(entries)

    async def refresh(self, database: Database, *, now: float | None = None) -> None:
        """Read the rows recorded since the last look (every row once a minute)."""
        now = now if now is not None else time.time()
        full = now - self.loaded_at >= FULL_RELOAD_SECONDS
        table = revoked_sessions.c
        query = select(table.account_id, table.session_id, table.not_before, table.until, table.recorded_at) \
            .where(table.until > now)
        if not full:
            query = query.where(table.recorded_at >= self.seen_up_to - OVERLAP_SECONDS)
        async with database.transaction(readonly=True) as session:
            rows = (await session.execute(query)).all()
        entries = [Revocation(r.account_id, r.session_id, r.not_before, r.until) for r in rows]
        if full:
            self.sessions, self.accounts = {}, {}
            self.loaded_at = now
        self.apply(entries)
        self.seen_up_to = max([self.seen_up_to, *(r.recorded_at for r in rows)])
        if full:
            self._forget(now)

    def _forget(self, now: float) -> None:
        self.sessions = {k: until for k, until in self.sessions.items() if until > now}
        self.accounts = {k: entry for k, entry in self.accounts.items() if entry[1] > now}

    async def purge(self, database: Database, *, now: float | None = None) -> int:
        """Drop the rows whose tokens have all expired."""
        now = now if now is not None else time.time()
        async with database.transaction() as session:
            result = await session.execute(delete(revoked_sessions).where(revoked_sessions.c.until < now))
        return result.rowcount or 0

    async def run(self, runtime: Runtime) -> None:
        """The refresh loop of one process (a worker of ``create_service_app``)."""
        interval = runtime.settings.session_refresh_seconds
        last_purge = time.time()
        while True:
            try:
                await self.refresh(runtime.database)
                if time.time() - last_purge >= FULL_RELOAD_SECONDS:
                    last_purge = time.time()
                    await self.purge(runtime.database)
            except Exception as exc:  # noqa: BLE001 - keep the last copy; the next round tries again
                log.warning("session revocations: refresh failed: %s", type(exc).__name__)
            if await runtime.pause(interval):
                return
