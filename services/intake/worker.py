"""Durable background work of the intake process: list imports and e-mail replies.

Both queues are tables (``uploads`` and ``mail_outbox``); a worker claims a row with a
lease, so several processes share the work and a crashed one's row is taken over when
its lease runs out. Nothing is kept only in memory.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import func, or_, select, update

from libs.common.lifecycle import pause, stop_tasks
from libs.common.runtime import Runtime

from .excel.reader import Limits
from .import_job import JobContext, Lost, run_job
from .imports import RUNNING
from .mail import InboundHandler, Replies, start_receiver
from .models import MailOut, Upload
from .text import now_utc

log = logging.getLogger(__name__)
WAKE = "intake.wake"


def wake(runtime: Runtime) -> None:
    """Tell this process's worker that work is waiting (others find it by polling)."""
    event = runtime.extras.get(WAKE)
    if event is not None:
        event.set()


class Worker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.database = runtime.database
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.wake = runtime.extras.setdefault(WAKE, asyncio.Event())
        self.replies = Replies(self.settings, runtime.tree)
        self.stopping = asyncio.Event()
        self._warned_no_relay = False

    def context(self) -> JobContext:
        s = self.settings
        return JobContext(database=self.database, tree=self.runtime.tree,
                          limits=Limits(s.max_upload_bytes, s.max_uncompressed_bytes, s.max_import_rows),
                          deadline=s.campaign_deadline, owner=self.owner, lease_seconds=s.worker_lease_seconds,
                          max_attempts=s.worker_max_attempts, replies=self.replies)

    # --- imports ---------------------------------------------------------------------------

    async def claim_upload(self) -> uuid.UUID | None:
        now = time.time()
        candidates = (select(Upload.id).where(Upload.status.in_(RUNNING),
                                              or_(Upload.lease_until.is_(None), Upload.lease_until < now))
                      .order_by(Upload.received_at).limit(1))
        if not self.database.sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        async with self.database.transaction() as session:
            claimed = (await session.execute(
                update(Upload).where(Upload.id.in_(candidates.scalar_subquery()))
                .values(lease_owner=self.owner, lease_until=now + self.settings.worker_lease_seconds)
                .returning(Upload.id))).scalar_one_or_none()
        return claimed

    async def imports_once(self) -> bool:
        upload_id = await self.claim_upload()
        if upload_id is None:
            return False
        try:
            await run_job(self.context(), upload_id)
        except Lost:
            log.warning("upload %s: lease lost to another worker", upload_id)
        return True

    async def run_imports(self) -> None:
        while not self.stopping.is_set():
            try:
                busy = await self.imports_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the lease runs out and the job is tried again
                log.exception("list import failed; it will be retried")
                busy = False
                await self._idle()
            if not busy:
                await self._idle(self.wake)

    async def _idle(self, event: asyncio.Event | None = None) -> None:
        """Wait for ``event`` (default: new work), the poll interval, or the stop."""
        waits = [asyncio.ensure_future(self.stopping.wait())]
        if event is not None:
            waits.append(asyncio.ensure_future(event.wait()))
        try:
            await asyncio.wait(waits, timeout=self.settings.worker_poll_interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if event is not None:
            event.clear()

    # --- e-mail replies ------------------------------------------------------------------------

    async def claim_mail(self, limit: int = 20) -> list[MailOut]:
        now = time.time()
        candidates = (select(MailOut.id).where(MailOut.sent_at.is_(None), MailOut.failed.is_(False),
                                               MailOut.next_attempt_at <= now,
                                               or_(MailOut.lease_until.is_(None), MailOut.lease_until < now))
                      .order_by(MailOut.id).limit(limit))
        if not self.database.sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        async with self.database.transaction() as session:
            ids = list((await session.execute(
                update(MailOut).where(MailOut.id.in_(candidates.scalar_subquery()))
                .values(lease_owner=self.owner, lease_until=now + 120).returning(MailOut.id))).scalars())
            if not ids:
                return []
            return list((await session.execute(select(MailOut).where(MailOut.id.in_(ids)).order_by(MailOut.id)))
                        .scalars())

    async def waiting_mail(self) -> int:
        async with self.database.transaction(readonly=True) as session:
            return (await session.execute(select(func.count()).select_from(MailOut).where(
                MailOut.sent_at.is_(None), MailOut.failed.is_(False)))).scalar_one()

    async def send(self, mail: MailOut) -> None:
        import aiosmtplib

        from email import message_from_bytes
        from email.utils import parseaddr

        s = self.settings
        sender = parseaddr(str(message_from_bytes(mail.message).get("From", "")))[1] or s.inbound_address("hotro")
        await aiosmtplib.send(
            mail.message, sender=sender, recipients=[mail.recipient], hostname=s.smtp_relay_host,
            port=s.smtp_relay_port, username=s.smtp_relay_username,
            password=s.smtp_relay_password.get_secret_value() if s.smtp_relay_password else None,
            start_tls=s.smtp_relay_starttls, use_tls=s.smtp_relay_tls, timeout=s.smtp_relay_timeout)

    async def mail_once(self) -> int:
        if not self.settings.smtp_relay_host:
            if not self._warned_no_relay and await self.waiting_mail():
                log.warning("no SMTP relay configured (KHAIBAO_INTAKE_SMTP_RELAY_HOST): replies wait in the outbox")
                self._warned_no_relay = True
            return 0
        mails = await self.claim_mail()
        for mail in mails:
            if self.stopping.is_set():
                break  # the others' leases run out and another process sends them
            error = None
            try:
                await self.send(mail)
            except Exception as exc:  # noqa: BLE001 - retried with backoff
                code = getattr(exc, "code", "")
                error = f"{type(exc).__name__} {code}".strip()[:300]
                log.warning("reply %s not sent (attempt %d): %s", mail.id, mail.attempts + 1, error)
            async with self.database.transaction() as session:
                values: dict = {"lease_owner": None, "lease_until": None, "attempts": MailOut.attempts + 1}
                if error is None:
                    values["sent_at"] = now_utc()
                else:
                    attempts = mail.attempts + 1
                    values.update(last_error=error, next_attempt_at=time.time() + min(3600, 5 * 2 ** attempts),
                                  failed=attempts >= self.settings.mail_max_attempts)
                await session.execute(update(MailOut).where(MailOut.id == mail.id, MailOut.lease_owner == self.owner)
                                      .values(**values))
        return len(mails)

    async def run_mail(self) -> None:
        while not self.stopping.is_set():
            try:
                sent = await self.mail_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("reply sender failed; retrying")
                sent = 0
            if not sent:
                await self._idle()


async def _supervise(name: str, factory: Callable[[], Awaitable[None]], stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("%s crashed; restarting in 1s", name)
            await pause(stopping, 1)


@contextlib.asynccontextmanager
async def background(runtime: Runtime) -> AsyncIterator[Worker]:
    """The worker loops and, when a port is set, the SMTP receiver; stopped at shutdown."""
    worker = Worker(runtime)
    runtime.extras["worker"] = worker
    tasks = {"list imports": asyncio.create_task(_supervise("list imports", worker.run_imports, worker.stopping)),
             "e-mail replies": asyncio.create_task(_supervise("e-mail replies", worker.run_mail, worker.stopping))}
    server = None
    settings = runtime.settings
    if settings.smtp_port:
        handler = InboundHandler(runtime.database, runtime.tree, settings, worker.replies, worker.wake)
        server = await start_receiver(handler, settings)
        log.info("SMTP receiver listening on %s:%s for %s.<district>@%s", settings.smtp_host, settings.smtp_port,
                 settings.mail_local_prefix, settings.mail_domain)
    try:
        yield worker
    finally:
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=5)
        # Let the loops finish what they are doing: a task cancelled in the middle of a
        # database call can leave the SQLite driver waiting forever. Cancel only stragglers
        # after the grace (a job's lease lets another worker take it over).
        await stop_tasks(tasks, worker.stopping, settings.shutdown_grace_seconds)
