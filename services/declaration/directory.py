"""What the hot path reads, held in memory: the venue list and the active rule set.

Each web worker keeps its own copy and looks for changes at most every
``cache_seconds`` (rows whose ``updated_at`` moved, and the active rule set's version),
in the background: a request never waits for that. A code that is not in memory is
looked up in the database at once (a venue created a moment ago). With ``cache_seconds``
at 0 every lookup goes to the database (tests that change venues between two requests).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select

from libs.common.db import Database

from .models import RetiredCode, RuleSet, Venue
from .screening import RuleBook, active_rule_book

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VenueInfo:
    venue_id: UUID
    code: str
    unit_id: UUID
    unit_name: str
    name: str
    address: str
    commune_path: str
    active: bool

    @classmethod
    def of(cls, row: Venue) -> "VenueInfo":
        return cls(row.venue_id, row.code, row.unit_id, row.unit_name, row.name, row.address, row.commune_path,
                   row.active)


RETIRED = "retired"


class Directory:
    def __init__(self, database: Database, *, cache_seconds: float) -> None:
        self.database = database
        self.cache_seconds = cache_seconds
        self.venues: dict[str, VenueInfo] = {}
        self.book: RuleBook | None = None
        self._seen_until = 0.0
        self._checked_at = 0.0
        self._refreshing: asyncio.Task | None = None

    async def load(self) -> None:
        """Everything, at start."""
        async with self.database.transaction(readonly=True) as session:
            rows = (await session.execute(select(Venue))).scalars().all()
            self.book = await active_rule_book(session)
        self.venues = {row.code: VenueInfo.of(row) for row in rows}
        self._seen_until = max((row.updated_at for row in rows), default=0.0)
        self._checked_at = time.monotonic()

    async def refresh(self) -> None:
        """Venues changed since the last look, and the active rule set if it changed."""
        since = self._seen_until - 5.0  # clocks of writers differ a little: look back
        async with self.database.transaction(readonly=True) as session:
            rows = (await session.execute(select(Venue).where(Venue.updated_at >= since))).scalars().all()
            version = (await session.execute(select(RuleSet.version).where(RuleSet.active))).scalar()
            if version is not None and (self.book is None or version != self.book.version):
                self.book = await active_rule_book(session)
        changed = {row.venue_id for row in rows}
        for code in [code for code, info in self.venues.items() if info.venue_id in changed]:
            self.venues.pop(code, None)
        for row in rows:
            self.venues[row.code] = VenueInfo.of(row)
            self._seen_until = max(self._seen_until, row.updated_at)
        self._checked_at = time.monotonic()

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._checked_at < self.cache_seconds:
            return
        if self._refreshing is None or self._refreshing.done():
            self._checked_at = time.monotonic()  # one refresh at a time
            self._refreshing = asyncio.create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception:  # noqa: BLE001 - the next request tries again; old data stays
            log.warning("could not refresh the venue list and rule set", exc_info=True)

    async def venue(self, code: str) -> VenueInfo | str | None:
        """The venue of a code; ``RETIRED`` for a code replaced by a rotation; None if unknown."""
        code = code.strip().upper()
        if self.cache_seconds > 0:
            self._maybe_refresh()
            found = self.venues.get(code)
            if found is not None:
                return found
        async with self.database.transaction(readonly=True) as session:
            row = (await session.execute(select(Venue).where(Venue.code == code))).scalar_one_or_none()
            if row is None:
                retired = await session.get(RetiredCode, code)
                return RETIRED if retired is not None else None
        info = VenueInfo.of(row)
        if self.cache_seconds > 0:
            self.venues[code] = info
        return info

    async def rules(self) -> RuleBook:
        if self.cache_seconds <= 0 or self.book is None:
            async with self.database.transaction(readonly=True) as session:
                self.book = await active_rule_book(session)
        else:
            self._maybe_refresh()
        return self.book

    def cached_venue(self, code: str) -> VenueInfo | None:
        return self.venues.get(code.strip().upper())

    async def close(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
            await asyncio.gather(self._refreshing, return_exceptions=True)
