"""The e-mail worker: sends queued credentials, retries with backoff, falls back to the Support Channel.

State lives in ``deliveries`` (attempts, next attempt, deadline, a lease), so the retries
survive restarts and several processes share the work. A batch of due deliveries is
claimed with a lease, sent over one SMTP connection, and each outcome is stored with its
own events in one transaction: sent (the sealed password is erased), or failed (next
attempt after ``initial * 2^(attempts-1)`` seconds, capped), or, past the deadline,
handed to the district's Support Channel. The password is decrypted only in memory, for
the time of composing the message, and never logged: failures log the delivery id and
the error class only.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiosmtplib
from prometheus_client import Gauge
from sqlalchemy import func, select, update

from libs.common.events.notification import CredentialsEmailed
from libs.common.outbox import publish
from libs.common.runtime import Runtime

from .alert_models import AlertDispatch
from .credentials import CredentialsRefused, land_in_channel, open_password, status_data
from .mailer import Mailer, compose
from .models import Delivery
from .settings import NotificationSettings

log = logging.getLogger(__name__)
SEND_ERRORS = (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError)
WAKEUP = "delivery_wakeup"
# What waits to be sent: credentials e-mails (deliveries) and alert e-mails and webhook
# calls (alert dispatches) still queued, due or waiting for a retry. Every process counts
# the same tables, hence max.
BACKLOG = Gauge("khaibao_notification_backlog", "Queued messages not yet sent, by channel",
                ["service", "channel"], multiprocess_mode="max")
BACKLOG_CHECK = "notification_backlog_checked"
BACKLOG_EVERY = 10.0  # seconds between two counts in one process


def backoff(settings: NotificationSettings, attempts: int) -> float:
    return min(settings.email_retry_initial_seconds * 2 ** max(attempts - 1, 0), settings.email_retry_max_seconds)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


async def claim_due(runtime: Runtime, model, owner: str, limit: int) -> list:  # noqa: ANN001
    """Lease queued rows of ``model`` (e-mail deliveries, alert dispatches) whose attempt is
    due and whose lease is free, oldest first; another worker skips them."""
    settings: NotificationSettings = runtime.settings
    now = time.time()
    due = (select(model.id).where(model.status == "queued", model.next_attempt_at <= datetime.now(UTC),
                                  (model.lease_until.is_(None)) | (model.lease_until < now))
           .order_by(model.next_attempt_at).limit(limit))
    if not runtime.database.sqlite:
        due = due.with_for_update(skip_locked=True)
    async with runtime.database.transaction() as session:
        ids = list((await session.execute(
            update(model).where(model.id.in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + settings.delivery_lease_seconds)
            .returning(model.id))).scalars())
        if not ids:
            return []
        rows = await session.execute(select(model).where(model.id.in_(ids)).order_by(model.next_attempt_at))
        return list(rows.scalars())


async def report_backlog(runtime: Runtime) -> None:
    """Refresh ``khaibao_notification_backlog`` (at most every BACKLOG_EVERY seconds per
    process; the delivery worker and the alert dispatcher both call it)."""
    now = time.monotonic()
    if now - runtime.extras.get(BACKLOG_CHECK, float("-inf")) < BACKLOG_EVERY:
        return
    runtime.extras[BACKLOG_CHECK] = now
    try:
        async with runtime.database.transaction(readonly=True) as session:
            credentials = (await session.execute(
                select(func.count()).select_from(Delivery).where(Delivery.status == "queued"))).scalar_one()
            alerts = dict((await session.execute(
                select(AlertDispatch.channel, func.count()).where(AlertDispatch.status == "queued")
                .group_by(AlertDispatch.channel))).all())
    except Exception:  # noqa: BLE001 - a metric must never stop the delivery
        log.debug("could not count the notification backlog", exc_info=True)
        return
    BACKLOG.labels("notification", "credentials").set(credentials)
    for channel in ("email", "webhook"):
        BACKLOG.labels("notification", channel).set(alerts.get(channel, 0))


async def claim(runtime: Runtime, owner: str) -> list[Delivery]:
    return await claim_due(runtime, Delivery, owner, runtime.settings.delivery_batch_size)


async def _record(runtime: Runtime, delivery_id, owner: str, error: Exception | None) -> None:  # noqa: ANN001
    settings: NotificationSettings = runtime.settings
    now = datetime.now(UTC)
    async with runtime.database.transaction() as session:
        delivery = await session.get(Delivery, delivery_id)
        if delivery is None or delivery.status != "queued" or delivery.lease_owner != owner:
            return  # superseded by a reset meanwhile, or another worker took over
        delivery.lease_owner, delivery.lease_until = None, None
        if error is None:
            delivery.status, delivery.sealed, delivery.sent_at = "sent", None, now
            delivery.attempts += 1
            delivery.last_error = None
            await publish(session, CredentialsEmailed(producer="notification", jurisdiction=delivery.commune_path,
                                                      data=status_data(delivery)))
            return
        delivery.attempts += 1
        delivery.last_error = f"{type(error).__name__}"[:200]
        deadline = _aware(delivery.deadline_at) or now
        unreadable = isinstance(error, CredentialsRefused) and error.code != "no_key"
        if unreadable or now >= deadline:
            await land_in_channel(session, delivery, "send_failed", now)
        else:  # the last attempt is made at the deadline itself
            delivery.next_attempt_at = min(now + timedelta(seconds=backoff(settings, delivery.attempts)), deadline)


async def send_batch(runtime: Runtime, deliveries: list[Delivery], owner: str) -> None:
    settings: NotificationSettings = runtime.settings
    outcomes: dict = {}
    try:
        async with Mailer(settings) as mailer:
            for delivery in deliveries:
                try:
                    password = open_password(settings, delivery)
                except CredentialsRefused as exc:
                    outcomes[delivery.id] = exc
                    continue
                try:
                    await mailer.send(compose(settings, delivery, password))
                    outcomes[delivery.id] = None
                except SEND_ERRORS as exc:
                    outcomes[delivery.id] = exc
                    if not mailer.client.is_connected:
                        break
                finally:
                    del password
    except SEND_ERRORS as exc:  # no connection at all: every delivery of the batch failed this time
        log.warning("SMTP server %s:%s unavailable: %s", settings.smtp_host, settings.smtp_port, type(exc).__name__)
        for delivery in deliveries:
            outcomes.setdefault(delivery.id, exc)
    for delivery in deliveries:
        error = outcomes.get(delivery.id, ConnectionError("not attempted"))
        if error is not None:
            log.warning("credentials e-mail of delivery %s failed (attempt %d): %s", delivery.id,
                        delivery.attempts + 1, type(error).__name__)
        await _record(runtime, delivery.id, owner, error)


async def run_worker(runtime: Runtime) -> None:
    """The loop every notification process runs (supervised by the composition root)."""
    settings: NotificationSettings = runtime.settings
    wakeup = runtime.extras.setdefault(WAKEUP, asyncio.Event())
    owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    while not runtime.stopping.is_set():
        await report_backlog(runtime)
        batch = await claim(runtime, owner)
        if batch:
            await send_batch(runtime, batch, owner)
            continue
        await runtime.pause(settings.delivery_poll_interval, wakeup)
        wakeup.clear()
