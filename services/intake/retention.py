"""Retention of the files intake stores (issue 17): uploaded lists and e-mail replies.

An uploaded list (console or e-mail) is a file of unit contacts (names, phones, e-mail
addresses); the registrations it created are the campaign's record and stay, but the file
itself is needed only while it is validated, imported or reviewed. A reply waiting in the
mail outbox is needed only until it is sent (or given up). So, ``retention_days`` (default
KHAIBAO_DATA_RETENTION_DAYS, 21) after an upload finished (imported, refused, dismissed or
failed) its file content is emptied (the row stays: reference, counts, status, row report);
that long after a reply was sent or given up, its row is deleted with the message and its
attachments. Uploads still running or awaiting review are never touched.

``erase_expired`` is one pass in the caller's transaction (``now`` injected: the tests move
the clock); ``retention_loop`` is the background worker (ServiceDefinition.workers).
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.observability import RETENTION_ERASED
from libs.common.runtime import Runtime

from .imports import DISMISSED, FAILED, IMPORTED, REFUSED
from .models import MailOut, Upload

log = logging.getLogger(__name__)
FINISHED = (IMPORTED, REFUSED, DISMISSED, FAILED)


async def erase_expired(session: AsyncSession, *, retention_days: float, now: datetime | None = None) -> int:
    """Empty the files of uploads finished before the period and delete the replies sent
    or given up before it; how many rows were touched."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    files = await session.execute(
        update(Upload)
        .where(Upload.status.in_(FINISHED), func.coalesce(Upload.finished_at, Upload.updated_at) < cutoff,
               func.length(Upload.content) > 0)
        .values(content=b"").execution_options(synchronize_session=False))
    mails = await session.execute(
        delete(MailOut)
        .where(or_(MailOut.sent_at < cutoff, (MailOut.failed.is_(True)) & (MailOut.created_at < cutoff)))
        .execution_options(synchronize_session=False))
    return (files.rowcount or 0) + (mails.rowcount or 0)


async def retention_loop(runtime: Runtime) -> None:
    settings = runtime.settings
    while not runtime.stopping.is_set():
        async with runtime.database.transaction() as session:
            erased = await erase_expired(session, retention_days=settings.retention_days)
        if erased:
            RETENTION_ERASED.labels("intake").inc(erased)
            log.info("retention: %d list files and sent replies older than %g days erased", erased,
                     settings.retention_days)
        await runtime.pause(settings.retention_interval_seconds)
