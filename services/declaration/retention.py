"""Retention: the personal data of a declaration is erased after ``retention_days`` (21).

What is erased, in place: the name, ID document, birth date and year, gender, nationality,
phone, home address (street and codes), the health answers (symptoms, other symptom,
exposures, vaccine doses) and the matched rules (they follow from the answers). What stays:
the row's ids, venue, unit, commune, times, channel and colour (green, yellow, red), so
every count by venue, day and colour (the gate console's, a district's) stays the same;
and the submission's idempotency key is deleted (a form sent again that late is new).
Reporting and notification keep their own copies and erase them themselves.

How: a background loop of each web worker (``retention_loop``) erases in small batches,
each ONE short transaction, walking the declarations by id. Ids are UUIDv7: they follow the
time of submission, so "older than the cutoff" is "id below the first id of the cutoff's
millisecond", a range of the primary key (no extra index on the hot table). The transaction
locks the cursor row (``retention_cursor``), erases the next batch after it and moves it,
so the work is idempotent (a batch is done once, whichever worker does it), resumable
after a crash (an uncommitted batch is simply done again) and never rescans erased rows.
Passes cannot outlive the data: the settings refuse a retention shorter than a pass's
validity, so a pass of an erased declaration is always expired at the gate; the result
page of an erased declaration answers 404, and a case raised from such a pass is not
completed with erased details.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import delete, select, update

from libs.common.db import Database
from libs.common.lifecycle import pause as wait_or_stop
from libs.common.observability import RETENTION_ERASED
from libs.common.runtime import Runtime

from .models import Declaration, RetentionCursor, Submission

log = logging.getLogger(__name__)
CURSOR = "declarations"
ERASED = {
    "full_name": "", "id_type": None, "id_number": None, "birth_date": None, "birth_year": 0, "gender": "",
    "nationality": "", "phone": None, "province_code": "", "district_code": "", "commune_code": "", "street": "",
    "symptoms": "", "symptom_other": None, "exposures": "", "vaccine_doses": None, "reasons": "",
    "id_number_index": None, "phone_index": None,
}
# A suspected case erased on the person's request (subject/service.py).
ERASED_CASE = {"full_name": "", "phone": None, "id_number": None, "symptoms": "", "note": None,
               "id_number_index": None, "phone_index": None}


def first_id_at(moment: datetime) -> UUID:
    """The smallest UUIDv7 of ``moment``'s millisecond: every id below it is older."""
    ms = int(moment.timestamp() * 1000)
    return UUID(int=(ms & ((1 << 48) - 1)) << 80)


async def erase_batch(database: Database, *, now: datetime, days: float, batch: int) -> int:
    """Erase the next ``batch`` declarations older than ``days`` before ``now``; how many."""
    boundary = first_id_at(now - timedelta(days=days))
    async with database.transaction() as session:
        # A write first: it takes the lock (the cursor's row on PostgreSQL, the file's write
        # lock on SQLite), so workers erasing at the same time take turns instead of failing.
        await session.execute(update(RetentionCursor).where(RetentionCursor.name == CURSOR).values(updated_at=now))
        cursor = await session.get(RetentionCursor, CURSOR)
        if cursor is None:  # created by the migration; recreated if someone removed it
            cursor = RetentionCursor(name=CURSOR)
            session.add(cursor)
        query = select(Declaration.id, Declaration.submission_id).where(Declaration.id < boundary)
        if cursor.erased_through is not None:
            query = query.where(Declaration.id > cursor.erased_through)
        rows = (await session.execute(query.order_by(Declaration.id).limit(batch))).all()
        if not rows:
            return 0
        ids = [r.id for r in rows]
        await session.execute(update(Declaration).where(Declaration.id.in_(ids))
                              .values(**ERASED, erased_at=now).execution_options(synchronize_session=False))
        await session.execute(delete(Submission).where(Submission.submission_id.in_({r.submission_id for r in rows}))
                              .execution_options(synchronize_session=False))
        cursor.erased_through = ids[-1]
        cursor.updated_at = now
    RETENTION_ERASED.labels("declaration").inc(len(ids))
    return len(ids)


async def erase_due(database: Database, *, now: datetime, days: float, batch: int,
                    pause: float = 0.05, stopping: asyncio.Event | None = None) -> int:
    """Every batch due now, one after the other (pausing between them for the hot path);
    at shutdown (``stopping``) the rest waits for the next pass."""
    total = 0
    while True:
        erased = await erase_batch(database, now=now, days=days, batch=batch)
        total += erased
        if erased < batch or await wait_or_stop(stopping, pause):
            return total


async def retention_loop(runtime: Runtime) -> None:
    """A worker of the service (ServiceDefinition.workers): erase what is due, then wait."""
    settings = runtime.settings
    while not runtime.stopping.is_set():
        erased = await erase_due(runtime.database, now=datetime.now(UTC), days=settings.retention_days,
                                 batch=settings.retention_batch_size, stopping=runtime.stopping)
        if erased:
            log.info("retention: personal data of %d declarations erased", erased)
        await runtime.pause(settings.retention_interval_seconds)
