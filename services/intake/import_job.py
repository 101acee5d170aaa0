"""The background job of a list upload (run by ``worker.py``): read the file, check every
row, then import it, hold it for review, or refuse it with a row-by-row report.

The job writes its progress into the upload row (any page or process can show it) and
holds the upload's lease while it runs: a worker that lost the lease stops without writing.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.db import Database
from libs.common.events.intake import UploadReceived, UploadReceivedData
from libs.common.outbox import publish

from .excel.reader import FileRefused, Limits, ParsedList, RawRow, parse_list
from .imports import (
    AWAITING_REVIEW, CRASHED, FAILED, IMPORTED, IMPORTING, REFUSED, RUNNING, VALIDATING, check_existing, check_rows,
    report_json,
)
from .models import Upload
from .service import Actor, register_units
from .text import Msg, now_utc
from .validation import UnitDetails


@dataclass
class JobContext:
    database: Database
    tree: AdminTree
    limits: Limits
    deadline: date | None
    owner: str
    lease_seconds: float
    max_attempts: int
    replies: object | None = None   # mail.Replies: queues the e-mail answers


class Lost(Exception):
    """Another worker took the lease over: stop without writing."""


async def _save_progress(ctx: JobContext, upload_id: UUID, **values: object) -> None:
    async with ctx.database.transaction() as session:
        result = await session.execute(update(Upload).where(Upload.id == upload_id, Upload.lease_owner == ctx.owner)
                                       .values(updated_at=now_utc(), lease_until=time.time() + ctx.lease_seconds,
                                               **values))
        if result.rowcount != 1:
            raise Lost()


async def run_job(ctx: JobContext, upload_id: UUID) -> None:
    """Check (and import, or hold for review) one claimed upload."""
    async with ctx.database.transaction() as session:
        upload = await session.get(Upload, upload_id)
        if upload is None or upload.lease_owner != ctx.owner or upload.status not in RUNNING:
            return
        upload.attempts += 1
        if upload.attempts > ctx.max_attempts:
            _finish(upload, FAILED, error=CRASHED)
            await _reply(ctx, session, upload, "refused")
            return
        upload.status, upload.phase, upload.updated_at = VALIDATING, "reading", now_utc()
        content, scope_path, district_path, mode = upload.content, upload.scope_path, upload.district_path, upload.mode

    progress = {"done": 0, "total": 0}
    loop_done = asyncio.Event()

    def on_progress(done: int, total: int) -> None:
        progress.update(done=done, total=total)

    async def report_progress() -> None:
        last = None
        while not loop_done.is_set():
            current = (progress["done"], progress["total"])
            if current != last:
                await _save_progress(ctx, upload_id, processed_rows=current[0], total_rows=current[1])
                last = current
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loop_done.wait(), timeout=0.3)

    reporter = asyncio.create_task(report_progress())
    try:
        parsed: ParsedList = await asyncio.to_thread(parse_list, content, ctx.limits, on_progress)
    except FileRefused as refused:
        loop_done.set()
        await reporter
        await _conclude(ctx, upload_id, REFUSED, error=refused.msg)
        return
    finally:
        loop_done.set()
    await reporter

    total = len(parsed.rows)
    await _save_progress(ctx, upload_id, phase="checking", processed_rows=0, total_rows=total)
    checked = await asyncio.to_thread(check_rows, parsed.rows, ctx.tree, district_path=district_path,
                                      scope_path=scope_path)
    await _save_progress(ctx, upload_id, processed_rows=total * 3 // 4, total_rows=total)
    good_rows = [r for r in parsed.rows if r.number not in checked.errors]
    errors = {**checked.errors}
    if mode == "review" or errors:
        # An import checks against existing registrations in its own transaction, below.
        async with ctx.database.transaction(readonly=True) as session:
            existing = await check_existing(session, [*good_rows, *(row for row, _ in checked.refused)],
                                            [*checked.units, *(identity for _, identity in checked.refused)],
                                            scope_path=scope_path)
        for row, messages in existing.items():
            errors.setdefault(row, []).extend(messages)
    await _save_progress(ctx, upload_id, processed_rows=total, total_rows=total)
    if errors:
        await _conclude(ctx, upload_id, REFUSED, errors=errors, row_count=total, parsed=parsed)
        return
    if mode == "review":
        await _conclude(ctx, upload_id, AWAITING_REVIEW, row_count=total)
        return
    await _save_progress(ctx, upload_id, status=IMPORTING, phase="importing", processed_rows=0, total_rows=total)
    await _import(ctx, upload_id, parsed, good_rows, checked.units)


async def _import(ctx: JobContext, upload_id: UUID, parsed: ParsedList, rows: list[RawRow],
                  units: list[UnitDetails]) -> None:
    async with ctx.database.transaction() as session:
        upload = (await session.execute(select(Upload).where(Upload.id == upload_id).with_for_update())).scalar_one()
        if upload.lease_owner != ctx.owner or upload.status != IMPORTING:
            return
        # Against existing registrations inside the transaction that writes: nothing can slip in between.
        again = await check_existing(session, rows, units, scope_path=upload.scope_path)
        if again:
            _finish(upload, REFUSED, errors=again, row_count=len(parsed.rows))
            await _reply(ctx, session, upload, "refused", parsed=parsed)
            return
        actor = Actor(upload.reviewed_by or upload.uploaded_by or (upload.sender_email or "e-mail"), upload.scope_path)
        registrations = await register_units(
            session, units, deadline=ctx.deadline, source="email" if upload.source == "email" else "console",
            received_at=upload.received_at, upload_id=upload.id, actor=actor)
        _finish(upload, IMPORTED, row_count=len(units))
        upload.registration_count = len(registrations)
        await _reply(ctx, session, upload, "imported", registrations=registrations)


def _finish(upload: Upload, status: str, *, error: Msg | None = None, errors: dict[int, list[Msg]] | None = None,
            row_count: int | None = None) -> None:
    now = now_utc()
    upload.status, upload.updated_at = status, now
    upload.finished_at = now if status != AWAITING_REVIEW else None
    upload.lease_owner = upload.lease_until = None
    if status in (REFUSED, FAILED, IMPORTED, AWAITING_REVIEW):
        upload.phase = None
    if error is not None:
        upload.error = json.dumps(error.as_dict(), ensure_ascii=False)
    if errors is not None:
        upload.report = report_json(errors)
        upload.error_count = len(errors)
    if row_count is not None:
        upload.row_count = row_count
        upload.processed_rows = upload.total_rows = row_count


async def _conclude(ctx: JobContext, upload_id: UUID, status: str, *, error: Msg | None = None,
                    errors: dict[int, list[Msg]] | None = None, row_count: int | None = None,
                    parsed: ParsedList | None = None) -> None:
    async with ctx.database.transaction() as session:
        upload = await session.get(Upload, upload_id)
        if upload is None or upload.lease_owner != ctx.owner:
            return
        _finish(upload, status, error=error, errors=errors, row_count=row_count)
        if status == AWAITING_REVIEW:
            await publish(session, UploadReceived(
                producer="intake", jurisdiction=upload.scope_path, data=UploadReceivedData(
                    upload_id=upload.id, reference=upload.reference, scope_path=upload.scope_path,
                    source=upload.source, filename=upload.filename, row_count=upload.row_count)))
            await _reply(ctx, session, upload, "received")
        else:
            await _reply(ctx, session, upload, "refused", parsed=parsed)


async def _reply(ctx: JobContext, session: AsyncSession, upload: Upload, kind: str, **extra: object) -> None:
    if ctx.replies is not None and upload.source == "email" and upload.sender_email:
        await ctx.replies.for_upload(session, upload, kind, **extra)  # type: ignore[attr-defined]
