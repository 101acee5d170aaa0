"""Issuing accounts for forwarded units (circular 1.3 step 3): durable jobs with progress.

The city asks to issue a whole batch or one unit of it: ``request_issue`` stores an
``IssueJob`` (queued) in the caller's transaction. A worker loop in every provisioning
process claims queued jobs with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; the
single writer of SQLite makes the claim atomic), and works through the job's pending
units in chunks (``issue_writer.ChunkWriter``). Per chunk:

1. a process pool makes one random password per unit, hashes it (argon2id) and seals it
   for notification (``passwords.make_credentials``), while the previous chunk is written;
2. one transaction checks the lease is still ours, creates the units, their venues (one
   per declared gate, each with an unguessable code) and one unit administrator account
   each, marks the forwarded units issued, publishes ``provisioning.venue.created`` and
   ``provisioning.account.issued`` (outbox), and stores the job's progress.

A crash loses at most the chunk in flight, which the next claim redoes (its units are
still pending); a unit is never issued twice (``units.registration_id`` is unique and a
unit already issued through another batch is counted as skipped). A chunk that keeps
failing marks its units failed, with the reason, and the job goes on; asking again picks
up the pending and failed units.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import sealed
from libs.common.auth import Principal, Role
from libs.common.events.provisioning import IssuanceCompleted, IssuanceCompletedData
from libs.common.outbox import publish
from libs.common.runtime import Runtime

from . import audit
from .issue_writer import ChunkWriter, Interrupted, LeaseLost
from .models import ForwardedBatch, ForwardedUnit, IssueJob
from .settings import ProvisioningSettings

log = logging.getLogger(__name__)
OPEN = ("queued", "running")
WAKEUP = "issue_wakeup"


class IssueRefused(Exception):
    """A request the city must be told about, with a message code (templates translate it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def credentials_key(settings: ProvisioningSettings) -> bytes:
    """The raw public key notification opens credentials with; created in development."""
    path = settings.credentials_public_key_path()
    if not path.exists():
        if settings.environment == "production" or settings.credentials_public_key_file is not None:
            raise IssueRefused("no_credentials_key")
        sealed.ensure_key_pair(*sealed.default_paths(settings.data_dir))
    return sealed.raw_public(sealed.load_public(path))


# --- requests ---------------------------------------------------------------------------

async def request_issue(session: AsyncSession, principal: Principal, batch: ForwardedBatch,
                        registration_id: UUID | None = None) -> IssueJob:
    """Queue a job for the batch (or one unit of it); an open job of the batch is reused."""
    if principal.role != Role.CITY_DIC or not principal.covers(batch.district_path):
        raise IssueRefused("not_allowed")
    open_job = (await session.execute(select(IssueJob).where(
        IssueJob.batch_id == batch.id, IssueJob.status.in_(OPEN)))).scalars().first()
    if open_job is not None and (open_job.registration_id is None or open_job.registration_id == registration_id):
        return open_job
    query = select(func.count()).where(ForwardedUnit.batch_id == batch.id,
                                       ForwardedUnit.status.in_(("pending", "failed")))
    if registration_id is not None:
        query = query.where(ForwardedUnit.registration_id == registration_id)
    waiting = (await session.execute(query)).scalar_one()
    if waiting == 0:
        raise IssueRefused("nothing_to_issue")
    if registration_id is None:
        # Units that failed before are tried again with the rest of the batch.
        await session.execute(update(ForwardedUnit).where(
            ForwardedUnit.batch_id == batch.id, ForwardedUnit.status == "failed").values(status="pending", error=None))
    else:
        await session.execute(update(ForwardedUnit).where(
            ForwardedUnit.batch_id == batch.id, ForwardedUnit.registration_id == registration_id,
            ForwardedUnit.status == "failed").values(status="pending", error=None))
    job = IssueJob(batch_id=batch.id, registration_id=registration_id, district_path=batch.district_path,
                   requested_by=audit.actor_id(principal), requested_by_name=principal.name, total=waiting,
                   created_at=datetime.now(UTC))
    session.add(job)
    audit.record(session, principal, "issue_requested", target=batch.reference, path=batch.district_path,
                 detail=f"{waiting} đơn vị")
    return job


async def get_job(session: AsyncSession, principal: Principal, job_id: UUID) -> IssueJob | None:
    job = await session.get(IssueJob, job_id)
    if job is None or not principal.covers(job.district_path):
        return None
    return job


def wake(runtime: Runtime) -> None:
    event = runtime.extras.get(WAKEUP)
    if event is not None:
        event.set()


# --- the worker -------------------------------------------------------------------------

async def claim_job(runtime: Runtime, owner: str) -> UUID | None:
    settings: ProvisioningSettings = runtime.settings
    now = time.time()
    candidates = (select(IssueJob.id).where(IssueJob.status.in_(OPEN),
                                            (IssueJob.lease_until.is_(None)) | (IssueJob.lease_until < now))
                  .order_by(IssueJob.created_at).limit(1))
    if not runtime.database.sqlite:
        candidates = candidates.with_for_update(skip_locked=True)
    async with runtime.database.transaction() as session:
        row = (await session.execute(
            update(IssueJob).where(IssueJob.id.in_(candidates.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + settings.job_lease_seconds, status="running",
                    started_at=func.coalesce(IssueJob.started_at, datetime.now(UTC)))
            .returning(IssueJob.id))).first()
    return row[0] if row else None


async def run_worker(runtime: Runtime) -> None:
    """The loop every provisioning process runs (supervised by the composition root)."""
    settings: ProvisioningSettings = runtime.settings
    wakeup = runtime.extras.setdefault(WAKEUP, asyncio.Event())
    owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    while not runtime.stopping.is_set():
        job_id = await claim_job(runtime, owner)
        if job_id is None:
            await runtime.pause(settings.issue_poll_interval, wakeup)
            wakeup.clear()
            continue
        await process_job(runtime, job_id, owner)


async def process_job(runtime: Runtime, job_id: UUID, owner: str) -> None:
    settings: ProvisioningSettings = runtime.settings
    async with runtime.database.transaction(readonly=True) as session:
        job = await session.get(IssueJob, job_id)
        batch = await session.get(ForwardedBatch, job.batch_id) if job else None
    if job is None or batch is None:
        return
    try:
        public_key = credentials_key(settings)
    except IssueRefused as exc:
        await _finish(runtime, job_id, owner, failed_reason=exc.code)
        return
    pool: Executor | None = None
    if job.total > 2 * settings.hash_workers:
        pool = ProcessPoolExecutor(max_workers=settings.hash_workers,
                                   mp_context=multiprocessing.get_context("spawn"))
    try:
        writer = ChunkWriter(runtime, job, batch, owner, public_key, pool)
        await writer.run()
        await _finish(runtime, job_id, owner)
    except LeaseLost:
        log.warning("issue job %s: lease lost, another worker continues it", job_id)
    except Interrupted:
        await _release(runtime, job_id, owner)
        log.info("issue job %s: paused for the shutdown, the next worker goes on with it", job_id)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


async def _release(runtime: Runtime, job_id: UUID, owner: str) -> None:
    """Give the lease of a job still running back (any worker may claim it at once)."""
    async with runtime.database.transaction() as session:
        await session.execute(update(IssueJob).where(IssueJob.id == job_id, IssueJob.lease_owner == owner)
                              .values(lease_owner=None, lease_until=None))


async def _finish(runtime: Runtime, job_id: UUID, owner: str, failed_reason: str | None = None) -> None:
    async with runtime.database.transaction() as session:
        job = await session.get(IssueJob, job_id)
        if job is None or job.lease_owner != owner:
            return
        batch = await session.get(ForwardedBatch, job.batch_id)
        job.status = "failed" if failed_reason else "done"
        job.error = failed_reason
        if failed_reason is None:  # units a parallel job took, or parts that arrived meanwhile
            job.total = job.done + job.skipped + job.failed
        job.finished_at = datetime.now(UTC)
        job.lease_owner, job.lease_until = None, None
        if failed_reason is None:
            await publish(session, IssuanceCompleted(
                producer="provisioning", jurisdiction=job.district_path, data=IssuanceCompletedData(
                    job_id=job.id, batch_id=job.batch_id, batch_reference=batch.reference if batch else None,
                    district_path=job.district_path, issued=job.done, skipped=job.skipped, failed=job.failed,
                    with_email=job.with_email, requested_by_name=job.requested_by_name)))
    log.info("issue job %s finished: %s", job_id, failed_reason or "done")
