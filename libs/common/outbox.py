"""Transactional outbox and its relay.

A use case calls ``publish(session, event)``: the event is written to the ``outbox``
table in the same transaction as the state change (no dual writes). The relay claims
a batch with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several relays share
the work; SQLite's single writer makes the claim atomic), publishes it, waits for the
bus to confirm durability, then deletes the rows. A relay that dies after publishing
but before deleting leaves the rows to be published again when the lease runs out:
at-least-once, made exactly-once in effect by idempotent consumers.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import Counter as Tally

from sqlalchemy import (
    BigInteger, Column, Double, Index, Integer, LargeBinary, MetaData, String, Table, delete, func,
    select, update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from . import faults
from .bus import Bus, BusUnavailable, OutgoingMessage
from .db import Database
from .events import Event, parse_event
from .observability import EVENTS_PUBLISHED, OUTBOX_BACKLOG

log = logging.getLogger(__name__)

metadata = MetaData()

def _outbox_columns() -> list[Column]:
    return [
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False),
        Column("event_type", String(120), nullable=False),
        Column("topic", String(120), nullable=False),
        Column("key", String(120), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("trace_id", String(64), nullable=False),
        Column("created_at", Double, nullable=False),
        Column("lease_owner", String(64), nullable=True),
        Column("lease_until", Double, nullable=True),
    ]


def _processed_events_columns() -> list[Column]:
    return [
        Column("consumer", String(80), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", Double, nullable=False),
    ]


outbox = Table("outbox", metadata, *_outbox_columns(), Index("outbox_lease", "lease_until"))
processed_events = Table("processed_events", metadata, *_processed_events_columns())


def create_common_tables(op) -> None:  # noqa: ANN001 - alembic.op
    """Called by each service's first migration: the outbox and the processed-event log."""
    op.create_table("outbox", *_outbox_columns())
    op.create_index("outbox_lease", "outbox", ["lease_until"])
    op.create_table("processed_events", *_processed_events_columns())


async def publish(session: AsyncSession, *events: Event) -> None:
    """Queue events in the caller's transaction; they leave only if it commits."""
    if not events:
        return
    now = time.time()
    rows = []
    for event in events:
        payload = event.to_bytes()
        parse_event(payload)  # the producing end validates what consumers will read
        rows.append({
            "event_id": str(event.id), "event_type": event.type, "topic": event.topic,
            "key": event.partition_key(), "payload": payload, "trace_id": event.trace_id,
            "created_at": now,
        })
    await session.execute(outbox.insert(), rows)
    session.info["outbox"] = True


class OutboxRelay:
    """Moves committed outbox rows to the bus. Safe to run in several processes at once."""

    def __init__(self, database: Database, bus: Bus, service: str, *, batch_size: int = 500,
                 poll_interval: float = 0.2, lease_seconds: float = 30.0, max_backoff: float = 5.0) -> None:
        self.database = database
        self.bus = bus
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.max_backoff = max_backoff
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._last_backlog_check = 0.0

    async def _claim(self) -> list:
        now = time.time()
        candidates = (
            select(outbox.c.id)
            .where((outbox.c.lease_until.is_(None)) | (outbox.c.lease_until < now)
                   | (outbox.c.lease_owner == self.owner))
            .order_by(outbox.c.id)
            .limit(self.batch_size)
        )
        if not self.database.sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        claim = (
            update(outbox)
            .where(outbox.c.id.in_(candidates.scalar_subquery()))
            .values(lease_owner=self.owner, lease_until=now + self.lease_seconds)
            .returning(outbox.c.id, outbox.c.event_type, outbox.c.topic, outbox.c.key,
                       outbox.c.payload, outbox.c.trace_id)
        )
        async with self.database.transaction() as session:
            rows = (await session.execute(claim)).all()
        return sorted(rows, key=lambda r: r.id)

    async def relay_once(self) -> int:
        """Publish one batch; the number of events published."""
        rows = await self._claim()
        if not rows:
            return 0
        faults.failpoint("relay.after_claim")
        await self.bus.publish([
            OutgoingMessage(
                topic=r.topic, key=r.key.encode(), value=r.payload,
                headers=(("type", r.event_type.encode()), ("trace_id", r.trace_id.encode())),
            )
            for r in rows
        ])
        faults.failpoint("relay.after_publish")
        ids = [r.id for r in rows]
        async with self.database.transaction() as session:
            await session.execute(delete(outbox).where(outbox.c.id.in_(ids), outbox.c.lease_owner == self.owner))
        for event_type, count in Tally(r.event_type for r in rows).items():
            EVENTS_PUBLISHED.labels(self.service, event_type).inc(count)
        return len(rows)

    async def backlog(self) -> int:
        async with self.database.transaction(readonly=True) as session:
            return (await session.execute(select(func.count()).select_from(outbox))).scalar_one()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                published = await self.relay_once()
                backoff = 0.1
            except BusUnavailable as exc:
                log.warning("outbox relay: bus unavailable, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except asyncio.CancelledError:
                raise
            except Exception:  # database restarting, lock timeouts: keep going
                log.exception("outbox relay failed, retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            await self._report_backlog()
            if published < self.batch_size:
                await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        event = self.database.outbox_written
        try:
            await asyncio.wait_for(event.wait(), timeout=self.poll_interval)
        except asyncio.TimeoutError:
            pass
        event.clear()

    async def _report_backlog(self) -> None:
        now = time.monotonic()
        if now - self._last_backlog_check < 5:
            return
        self._last_backlog_check = now
        try:
            OUTBOX_BACKLOG.labels(self.service).set(await self.backlog())
        except Exception:  # noqa: BLE001 - a metric must never stop the relay
            log.debug("could not count the outbox backlog", exc_info=True)
