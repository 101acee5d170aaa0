"""Transactional outbox and its relay.

A use case calls ``publish(session, event)``: the event is written to the ``outbox``
table in the same transaction as the state change (no dual writes). The relay moves
committed rows to the bus and removes them only once the bus has confirmed that it
stored them durably, so a relay that dies at any point loses nothing (at-least-once,
made exactly-once in effect by idempotent consumers):

* PostgreSQL: ONE statement takes a batch, ``DELETE FROM outbox WHERE id IN (SELECT ...
  FOR UPDATE SKIP LOCKED LIMIT n) RETURNING ...``, in a transaction that stays open while
  the batch is published and commits only after the bus confirmed it. If the publish
  fails the transaction rolls back and the rows are there again at once; if the relay
  dies, its connection closes and PostgreSQL aborts the transaction: the same. Several
  relays share the work (each skips the rows another holds). No lease is written: a
  batch costs one statement and one commit instead of a lease UPDATE (a write and its
  WAL per row), a DELETE and two commits.
* SQLite (one writer at a time): holding the write lock across a publish would stall
  every writer of the database, so the relay claims a batch with a lease (an UPDATE),
  publishes, then deletes; a relay that dies leaves its rows to be published again when
  the lease runs out.

At rest the payload is sealed with the producing service's field key ring
(libs/common/fieldcrypt.py: an event may carry a name or a phone, and the outbox is in
the service's database files); the relay opens it before it publishes.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import Counter as Tally

from sqlalchemy import BigInteger, Column, Double, Index, Integer, LargeBinary, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import faults
from .bus import Bus, BusUnavailable, OutgoingMessage
from .db import Database
from .events import Event, parse_event
from .fieldcrypt import open_bytes_registered, registered
from .lifecycle import pause
from .observability import EVENTS_PUBLISHED, OUTBOX_BACKLOG

log = logging.getLogger(__name__)
PAYLOAD_CONTEXT = "outbox.payload"  # the associated data of a sealed payload

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
        keys = registered(event.producer)
        if keys is not None:  # at rest in the producer's database, sealed (personal data inside)
            payload = keys.seal_bytes(payload, PAYLOAD_CONTEXT)
        else:
            _warn_unsealed(event.producer)
        rows.append({
            "event_id": str(event.id), "event_type": event.type, "topic": event.topic,
            "key": event.partition_key(), "payload": payload, "trace_id": event.trace_id,
            "created_at": now,
        })
    await session.execute(outbox.insert(), rows)
    session.info["outbox"] = True


_unsealed_warned: set[str] = set()


def _warn_unsealed(producer: str) -> None:
    """A producer with no key ring registered (a tool or test without keys; a service
    refuses to start without one) stores its payloads clear: said once per producer."""
    if producer not in _unsealed_warned:
        _unsealed_warned.add(producer)
        log.warning("outbox payloads of %s stored unsealed: no field key ring registered", producer)


def open_payload(stored: bytes) -> bytes:
    """An outbox row's payload as published (opened with the registered ring whose key
    sealed it; a clear payload is returned as it is)."""
    return open_bytes_registered(stored, PAYLOAD_CONTEXT)


class OutboxRelay:
    """Moves committed outbox rows to the bus. Safe to run in several processes at once.

    ``lease_seconds`` applies to SQLite only (PostgreSQL holds no lease: see the module)."""

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
        self._types: dict[str, tuple[str, bytes]] = {}  # event type -> its header

    # PostgreSQL: take, publish, and commit the removal only once the bus has the batch.
    # Rows still leased by a relay of an older version (lease_until in the future) are left
    # to it during a rolling upgrade.
    TAKE = (
        "DELETE FROM outbox WHERE id IN ("
        "SELECT id FROM outbox WHERE lease_until IS NULL OR lease_until < $1 "
        "ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) "
        "RETURNING id, event_type, topic, key, payload, trace_id"
    )

    # SQLite: lease a batch, publish, delete. Plain SQL on the driver (no ORM per batch);
    # the rows of this batch are exactly those leased to this relay up to its last id.
    CLAIM = (
        "UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN ("
        "SELECT id FROM outbox WHERE lease_until IS NULL OR lease_until < ? OR lease_owner = ? "
        "ORDER BY id LIMIT ?) "
        "RETURNING id, event_type, topic, key, payload, trace_id"
    )
    RELEASE = "DELETE FROM outbox WHERE lease_owner = ? AND id <= ?"

    async def _claim(self) -> list:
        """SQLite: lease a batch (the rows of a relay that died come back when its lease ends)."""
        now = time.time()
        async with self.database.engine.begin() as connection:
            rows = (await connection.exec_driver_sql(
                self.CLAIM, (self.owner, now + self.lease_seconds, now, self.owner, self.batch_size))).all()
        return sorted(rows, key=lambda r: r[0])

    async def _publish(self, rows) -> None:  # noqa: ANN001 - rows of (id, event_type, topic, key, payload, trace_id)
        faults.failpoint("relay.after_claim")
        types = self._types
        messages = []
        for r in rows:
            kind = types.get(r[1])
            if kind is None:
                kind = types[r[1]] = ("type", r[1].encode())
            value = open_bytes_registered(r[4], PAYLOAD_CONTEXT)  # sealed at rest by publish()
            messages.append(OutgoingMessage(topic=r[2], key=r[3].encode(), value=value,
                                            headers=(kind, ("trace_id", r[5].encode()))))
        await self.bus.publish(messages)
        faults.failpoint("relay.after_publish")

    async def relay_once(self) -> int:
        """Publish one batch; the number of events published."""
        if self.database.sqlite:
            rows = await self._relay_leased()
        else:
            rows = await self._relay_in_transaction()
        if not rows:
            return 0
        for event_type, count in Tally(r[1] for r in rows).items():
            EVENTS_PUBLISHED.labels(self.service, event_type).inc(count)
        return len(rows)

    async def _relay_in_transaction(self) -> list:
        async with self.database.engine.connect() as connection:
            # The driver's own connection (asyncpg): one prepared statement per batch, no
            # ORM; the pool still owns the connection (checked on checkout, reset on return).
            driver = (await connection.get_raw_connection()).driver_connection
            try:
                async with driver.transaction():
                    rows = await driver.fetch(self.TAKE, time.time(), self.batch_size)
                    if rows:
                        rows.sort(key=lambda r: r[0])
                        await self._publish(rows)
                # Committed: the rows are gone only now that the bus has them.
            except BaseException:
                if driver.is_closed() or driver.is_in_transaction():  # never back to the pool half-done
                    await connection.invalidate()
                raise
        return rows

    async def _relay_leased(self) -> list:
        rows = await self._claim()
        if not rows:
            return rows
        await self._publish(rows)
        async with self.database.engine.begin() as connection:
            await connection.exec_driver_sql(self.RELEASE, (self.owner, rows[-1][0]))
        return rows

    async def backlog(self) -> int:
        async with self.database.transaction(readonly=True) as session:
            return (await session.execute(select(func.count()).select_from(outbox))).scalar_one()

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        """Relay until ``stopping`` is set; it is checked between batches (a batch in flight
        is published and removed, or rolled back), and it ends every wait at once."""
        backoff = 0.1
        while not (stopping is not None and stopping.is_set()):
            try:
                published = await self.relay_once()
                backoff = 0.1
            except BusUnavailable as exc:
                log.warning("outbox relay: bus unavailable, retrying in %.1fs: %s", backoff, exc)
                await pause(stopping, backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except asyncio.CancelledError:
                raise
            except Exception:  # database restarting, lock timeouts: keep going
                log.exception("outbox relay failed, retrying in %.1fs", backoff)
                await pause(stopping, backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            await self._report_backlog()
            if published < self.batch_size:
                await self._wait_for_work(stopping)

    async def _wait_for_work(self, stopping: asyncio.Event | None = None) -> None:
        event = self.database.outbox_written
        await pause(stopping, self.poll_interval, event)
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
