"""The writing side of an issue job (``issuing.py``): one chunk of forwarded units at a time.

The passwords of the next chunk are made and hashed in a process pool while this chunk is
written; each chunk is one transaction that checks the job's lease, creates the units,
their venues and administrator accounts, marks the forwarded units issued, publishes the
events and stores the job's progress.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from concurrent.futures import Executor
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.auth import Role
from libs.common.events.provisioning import (
    AccountIssued, CredentialsDeliveryData, SealedCredentials, VenueCreated, VenueCreatedData,
)
from libs.common.outbox import publish
from libs.common.runtime import Runtime

from .models import Account, AuditEntry, ForwardedBatch, ForwardedUnit, IssueJob, Unit, Venue
from .passwords import PASSWORD_ALPHABET, IssuedCredentials, chunks, make_credentials
from .service import unused_venue_codes
from .settings import ProvisioningSettings

log = logging.getLogger(__name__)

MAX_VENUES_PER_UNIT = 50


class LeaseLost(Exception):
    pass


class Interrupted(Exception):
    """The service is stopping: the job stops between two chunks (``issuing.process_job``
    gives its lease back, so that the next process to start goes on with it at once)."""


def venue_names(count: int) -> list[str]:
    count = max(1, min(count, MAX_VENUES_PER_UNIT))
    return ["Cổng chính"] if count == 1 else [f"Cổng {i}" for i in range(1, count + 1)]


def new_username(commune_path: str) -> str:
    """``dv27664-k7m2p``: the commune code, then 5 random letters (unique per commune)."""
    suffix = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(5))
    return f"dv{commune_path.rsplit('/', 1)[-1]}-{suffix}"


class ChunkWriter:
    """Works through one job: hashing of the next chunk overlaps the writing of this one."""

    def __init__(self, runtime: Runtime, job: IssueJob, batch: ForwardedBatch, owner: str, public_key: bytes,
                 pool: Executor | None) -> None:
        self.runtime = runtime
        self.settings: ProvisioningSettings = runtime.settings
        self.tree: AdminTree = runtime.tree
        self.job = job
        self.batch = batch
        self.owner = owner
        self.public_key = public_key
        self.pool = pool
        base = self.settings.own_url()
        self.links = {"signin_url": f"{base}/signin", "guide_url": f"{base}/help/unit",
                      "posters_url": f"{base}/posters"}

    async def _next_units(self, after: int) -> list[ForwardedUnit]:
        query = (select(ForwardedUnit).where(ForwardedUnit.batch_id == self.job.batch_id,
                                             ForwardedUnit.status == "pending", ForwardedUnit.position > after)
                 .order_by(ForwardedUnit.position).limit(self.settings.issue_chunk_size))
        if self.job.registration_id is not None:
            query = query.where(ForwardedUnit.registration_id == self.job.registration_id)
        async with self.runtime.database.transaction(readonly=True) as session:
            return list((await session.execute(query)).scalars())

    def _hash(self, units: list[ForwardedUnit]) -> tuple[list[tuple[str, str]], asyncio.Future]:
        ids = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in units]
        args = (self.settings.initial_password_time_cost, self.settings.initial_password_memory_kib, self.public_key)
        loop = asyncio.get_running_loop()
        if self.pool is None:
            future = asyncio.ensure_future(asyncio.to_thread(make_credentials, ids, *args))
        else:
            parts = [loop.run_in_executor(self.pool, make_credentials, part, *args)
                     for part in chunks(ids, self.settings.hash_workers)]

            async def joined() -> list:
                return [c for part in await asyncio.gather(*parts) for c in part]

            future = asyncio.ensure_future(joined())
        return ids, future

    async def run(self) -> None:
        units = await self._next_units(0)
        hashing = self._hash(units) if units else None
        while units:
            if self.runtime.stopping.is_set():
                raise Interrupted()
            ids, future = hashing
            credentials = await future
            following = await self._next_units(units[-1].position)
            hashing = self._hash(following) if following else None
            await self._write_with_retries(units, ids, credentials)
            units = following

    async def _write_with_retries(self, units, ids, credentials) -> None:  # noqa: ANN001
        for attempt in range(1, 4):
            try:
                async with self.runtime.database.transaction() as session:
                    await self._write(session, units, ids, credentials)
                return
            except LeaseLost:
                raise
            except Exception as exc:  # noqa: BLE001 - a unique clash or the database: try again
                log.warning("issue job %s: chunk failed (attempt %d of 3): %s", self.job.id, attempt,
                            type(exc).__name__)
                await asyncio.sleep(0.2 * attempt)
        async with self.runtime.database.transaction() as session:
            await self._renew(session)
            keys = [{"batch_id": u.batch_id, "registration_id": u.registration_id, "status": "failed",
                     "error": "Lỗi khi ghi dữ liệu, hãy cấp lại / Could not be stored, issue again"} for u in units]
            await session.execute(update(ForwardedUnit), keys)
            await session.execute(update(IssueJob).where(IssueJob.id == self.job.id)
                                  .values(failed=IssueJob.failed + len(units)))

    async def _renew(self, session: AsyncSession) -> None:
        renewed = await session.execute(
            update(IssueJob).where(IssueJob.id == self.job.id, IssueJob.lease_owner == self.owner)
            .values(lease_until=time.time() + self.settings.job_lease_seconds))
        if renewed.rowcount != 1:
            raise LeaseLost()

    async def _write(self, session: AsyncSession, units: list[ForwardedUnit], ids: list[tuple[str, str]],
                     credentials: list[IssuedCredentials]) -> None:
        await self._renew(session)
        now = datetime.now(UTC)
        regs = [u.registration_id for u in units]
        still_pending = set((await session.execute(select(ForwardedUnit.registration_id).where(
            ForwardedUnit.batch_id == self.job.batch_id, ForwardedUnit.registration_id.in_(regs),
            ForwardedUnit.status == "pending"))).scalars())
        existing = dict((await session.execute(select(Unit.registration_id, Unit.id).where(
            Unit.registration_id.in_(regs)))).all())
        todo, updates, skipped, failed = [], [], 0, 0
        for unit, (account_id, credentials_id), creds in zip(units, ids, credentials):
            if unit.registration_id not in still_pending:
                continue
            if unit.registration_id in existing:
                skipped += 1
                updates.append({"batch_id": unit.batch_id, "registration_id": unit.registration_id,
                                "status": "issued", "unit_id": existing[unit.registration_id], "issued_at": now,
                                "error": "Đã cấp trước đó / Issued before"})
                continue
            if self.tree.get(unit.commune_path) is None:
                failed += 1
                updates.append({"batch_id": unit.batch_id, "registration_id": unit.registration_id,
                                "status": "failed", "error": "Phường/xã không có trong danh mục / Unknown commune"})
                continue
            todo.append((unit, UUID(account_id), UUID(credentials_id), creds))

        names = {u.registration_id: venue_names(u.venue_count) for u, *_ in todo}
        codes = iter(await unused_venue_codes(session, sum(len(n) for n in names.values())))
        usernames = await self._usernames(session, [u.commune_path for u, *_ in todo])
        unit_rows, venue_rows, account_rows, audit_rows, events = [], [], [], [], []
        with_email = 0
        for (unit, account_id, credentials_id, creds), username in zip(todo, usernames):
            unit_id = uuid.uuid4()
            unit_rows.append({
                "id": unit_id, "name": unit.unit_name, "address": unit.address, "commune_path": unit.commune_path,
                "registration_id": unit.registration_id, "created_at": now, "unit_type": unit.unit_type,
                "reference": unit.reference, "contact_name": unit.contact_name,
                "contact_position": unit.contact_position, "contact_phone": unit.contact_phone,
                "contact_email": unit.contact_email, "tax_code": unit.tax_code, "batch_id": unit.batch_id,
            })
            for name in names[unit.registration_id]:
                venue = {"id": uuid.uuid4(), "unit_id": unit_id, "code": next(codes), "name": name,
                         "address": unit.address, "commune_path": unit.commune_path, "active": True,
                         "created_at": now}
                venue_rows.append(venue)
                events.append(VenueCreated(producer="provisioning", jurisdiction=unit.commune_path,
                                           data=VenueCreatedData(venue_id=venue["id"], code=venue["code"],
                                                                 unit_id=unit_id, unit_name=unit.unit_name,
                                                                 name=name, address=unit.address,
                                                                 commune_path=unit.commune_path)))
            account_rows.append({
                "id": account_id, "username": username, "name": unit.unit_name[:200], "role": str(Role.UNIT_ADMIN),
                "jurisdiction": unit.commune_path, "unit_id": unit_id, "password_hash": creds.password_hash,
                "must_change_password": True, "disabled": False, "created_at": now,
                "credentials_id": credentials_id, "credentials_status": "queued", "credentials_status_at": now,
                "created_by": self.job.requested_by,
            })
            audit_rows.append({
                "id": uuid.uuid4(), "at": now, "actor_id": self.job.requested_by,
                "actor_name": self.job.requested_by_name, "actor_role": str(Role.CITY_DIC), "action": "issued",
                "unit_id": unit_id, "target": username, "path": unit.commune_path,
                "detail": f"{self.batch.reference}",
            })
            with_email += 1 if unit.contact_email else 0
            events.append(AccountIssued(producer="provisioning", jurisdiction=unit.commune_path,
                                        data=CredentialsDeliveryData(
                account_id=account_id, username=username, role=str(Role.UNIT_ADMIN), unit_id=unit_id,
                unit_name=unit.unit_name, unit_address=unit.address, commune_path=unit.commune_path,
                district_path=self.batch.district_path, registration_id=unit.registration_id,
                reference=unit.reference, contact_name=unit.contact_name, contact_email=unit.contact_email,
                venue_count=len(names[unit.registration_id]),
                credentials=SealedCredentials(credentials_id=credentials_id, key_id=creds.key_id, sealed=creds.sealed),
                job_id=self.job.id, **self.links)))
            updates.append({"batch_id": unit.batch_id, "registration_id": unit.registration_id,
                            "status": "issued", "unit_id": unit_id, "issued_at": now, "error": None})
        if unit_rows:
            await session.execute(insert(Unit.__table__), unit_rows)
            await session.execute(insert(Venue.__table__), venue_rows)
            await session.execute(insert(Account.__table__), account_rows)
            await session.execute(insert(AuditEntry.__table__), audit_rows)
            await publish(session, *events)
        if updates:
            await session.execute(update(ForwardedUnit), updates)
        await session.execute(update(IssueJob).where(IssueJob.id == self.job.id).values(
            done=IssueJob.done + len(unit_rows), skipped=IssueJob.skipped + skipped,
            failed=IssueJob.failed + failed, with_email=IssueJob.with_email + with_email))

    async def _usernames(self, session: AsyncSession, communes: list[str]) -> list[str]:
        names = [new_username(c) for c in communes]
        while True:
            taken = set((await session.execute(select(Account.username).where(Account.username.in_(names))))
                        .scalars())
            duplicates = {n for n in names if names.count(n) > 1} if len(set(names)) < len(names) else set()
            clash = taken | duplicates
            if not clash:
                return names
            seen: set[str] = set()
            fresh = []
            for name, commune in zip(names, communes):
                if name in taken or name in seen:
                    name = new_username(commune)
                seen.add(name)
                fresh.append(name)
            names = fresh
