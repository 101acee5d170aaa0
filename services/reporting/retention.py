"""Retention (issue 7): the personal data of visits is erased after a configurable period.

``KHAIBAO_REPORTING_RETENTION_DAYS`` (default 21, as the NHS app did): a visit declared
longer ago than that loses its ``full_name``, ``phone`` and ``phone_index`` (set to NULL, ``erased_at``
stamped); the row itself — venue, time, screening result, channel — stays, so every count
survives. The dashboards' aggregates are separate tables and are not touched. The access
log is kept: it names the officials who acted, never the visitors found.

``erase_expired`` is one batch in the caller's transaction (``now`` injected: the tests
move the clock). ``run_retention`` is the background loop of ``ServiceDefinition.workers``:
batches until nothing is left, then sleeps ``retention_interval_seconds``. Each batch
runs to its end even when the service is stopping (a task cancelled inside a database
call can leave the SQLite driver hanging): the stop takes effect between batches.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.observability import RETENTION_ERASED
from libs.common.runtime import Runtime

from .visits import visits

log = logging.getLogger(__name__)
T = TypeVar("T")


async def erase_expired(session: AsyncSession, *, retention_days: int, now: datetime | None = None,
                        batch_size: int = 5000) -> int:
    """Erase the name and phone of up to ``batch_size`` visits older than the period; how many."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    due = (select(visits.c.seq).where(visits.c.submitted_at < cutoff, visits.c.erased_at.is_(None))
           .order_by(visits.c.seq).limit(batch_size))
    seqs = [row[0] for row in await session.execute(due)]
    if not seqs:
        return 0
    await session.execute(update(visits).where(visits.c.seq.in_(seqs))
                          .values(full_name=None, phone=None, phone_index=None, erased_at=now))
    return len(seqs)


async def _to_the_end(work: Awaitable[T]) -> T:
    """Await ``work``; if cancelled meanwhile, let it finish first, then stop."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


async def retention_pass(runtime: Runtime, now: datetime | None = None) -> int:
    """Erase everything due, batch after batch; the number of visits erased."""
    settings = runtime.settings
    total = 0
    while True:
        async def batch() -> int:
            async with runtime.database.transaction() as session:
                return await erase_expired(session, retention_days=settings.retention_days, now=now,
                                           batch_size=settings.retention_batch_size)
        erased = await _to_the_end(batch())
        total += erased
        RETENTION_ERASED.labels("reporting").inc(erased)
        if erased < settings.retention_batch_size:
            break
    if total:
        log.info("retention: erased the contact details of %d visits older than %d days",
                 total, settings.retention_days)
    return total


async def run_retention(runtime: Runtime) -> None:
    """The background loop (supervised: restarted after a crash, cancelled at shutdown)."""
    while not runtime.stopping.is_set():
        await retention_pass(runtime)
        await runtime.pause(runtime.settings.retention_interval_seconds)
