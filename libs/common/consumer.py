"""The idempotent consumer: bus -> handler -> processed-event row, in one transaction.

For each message: parse and validate the envelope (malformed or unknown types go to the
dead-letter topic and never block the others); skip types this consumer does not handle;
run the handler in a transaction that also records (consumer, event id), so a redelivered
event is recognised and applied once; commit the bus offset only after that transaction
committed. A failing handler is retried with backoff and then dead-lettered; a database
that is down is waited for, never dead-lettered.

Handlers only change the consumer's database (a batch may be rolled back and applied
again one event at a time); anything external, such as an e-mail, is itself an outbox
event handled by its own consumer.

A handler map's entries are plain handlers ``async def h(session, event)`` or batch
handlers ``async def h(session, events)`` (``handlers.py``: ``BatchHandler``,
``batch_handler``, ``chain_handlers``, ``plan_batch``).

The fast path (``_apply_batch``): one transaction per polled batch; every event id of the
batch is claimed with one multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING``, the
ones already processed (and repeats within the batch) are dropped, and the rest are
applied by ``plan_batch``: batch handlers get their type's events at once, plain handlers
one by one, in an order that keeps the batch's wherever a handler needs it.

An unreadable message in the batch is dead-lettered after the batch committed; if the
batch fails, every message is taken again one by one (the careful path) with retries.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence

from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from . import faults
from .bus import Bus, BusUnavailable, Consumer, Message, OutgoingMessage
from .db import Database
from .events import DEAD_LETTER_TOPIC, Event, MalformedEvent, UnknownEvent, parse_event, topic_for
from .handlers import (  # noqa: F401 - the handler API is imported from here too
    ApplyMany, BatchHandler, Handler, apply_each, batch_handler, chain_handlers, plan_batch,
)
from .lifecycle import pause
from .observability import (
    CONSUMER_LAG, EVENTS_CONSUMED, EVENTS_DEAD_LETTERED, EVENTS_FAILED, reset_trace_id, set_trace_id,
)
from .outbox import processed_events

log = logging.getLogger(__name__)

# Rows of one multi-row statement: far below SQLite's and PostgreSQL's (32767) bound-parameter limits.
CLAIM_CHUNK = 500
TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, ConnectionError,
             OSError, asyncio.TimeoutError)
# SQLSTATE classes of a database that is going away or not back yet (PostgreSQL restarting:
# 57P01 admin_shutdown, 57P03 cannot_connect_now; 08 connection exceptions; 53 resources).
# 25006 read_only_sql_transaction: a failover made this connection's node a standby.
TRANSIENT_SQLSTATES = ("08", "57P", "53", "25006")
# A failover under way: no node of a multi-host URL is read-write yet (asyncpg raises it
# while connecting, before SQLAlchemy wraps anything).
FAILOVER_ERRORS = ("TargetServerAttributeNotMatched",)


def _failing_over(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if type(seen).__name__ in FAILOVER_ERRORS:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def is_transient(exc: BaseException) -> bool:
    """The database is unreachable, restarting or locked: the event is fine, wait for it.

    asyncpg reports a server shutting down or starting up as a plain DBAPIError (not an
    OperationalError); treated as a handler failure, the event would be dead-lettered.
    """
    if isinstance(exc, TRANSIENT) or _failing_over(exc):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return isinstance(state, str) and state.startswith(TRANSIENT_SQLSTATES)
    return False


async def claim_event(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` handles ``event_id``; False if it already did."""
    dialect = session.bind.dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(processed_events)
    result = await session.execute(
        insert.values(consumer=consumer, event_id=event_id, processed_at=time.time())
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    )
    return result.rowcount == 1


async def claim_events(session: AsyncSession, consumer: str, event_ids: Sequence[str]) -> set[str]:
    """Record that ``consumer`` handles each of ``event_ids`` (distinct); the ones it had not
    handled before.

    One ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING event_id`` per
    ``CLAIM_CHUNK`` ids (SQLAlchemy's "insertmanyvalues": the statement is compiled once
    and its VALUES repeated, within both engines' bound-parameter limits)."""
    if not event_ids:
        return set()
    dialect = session.bind.dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(processed_events)
    statement = (insert.on_conflict_do_nothing(index_elements=["consumer", "event_id"])
                 .returning(processed_events.c.event_id)
                 .execution_options(insertmanyvalues_page_size=CLAIM_CHUNK))
    now = time.time()
    result = await session.execute(statement, [{"consumer": consumer, "event_id": i, "processed_at": now}
                                               for i in event_ids])
    return set(result.scalars())


class Stopped(Exception):
    """The service stops while an event waits for a retry: its offset is not committed, so
    the event is delivered again when the consumer starts next (nothing handled is lost)."""


class EventConsumer:
    def __init__(self, database: Database, bus: Bus, service: str, group: str,
                 handlers: Mapping[str, Handler], *, max_attempts: int = 5, backoff: float = 0.2,
                 batch_size: int = 500) -> None:
        self.database = database
        self.bus = bus
        self.service = service
        self.group = group
        self.handlers = dict(handlers)
        self.topics = sorted({topic_for(t) for t in self.handlers})
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.batch_size = batch_size
        self.stopping = asyncio.Event()  # run() replaces it with the service's stop signal
        self._last_lag_check = 0.0

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        """Consume until ``stopping`` is set; it is checked between polled batches (a batch
        in flight commits with its offsets, or is redelivered), and it ends every wait."""
        self.stopping = stopping if stopping is not None else asyncio.Event()
        delay = 0.2
        while not self.stopping.is_set():
            consumer = self.bus.consumer(self.group, self.topics)
            try:
                await consumer.start()
                delay = 0.2
                await self._consume(consumer)
            except BusUnavailable as exc:
                log.warning("consumer %s: bus unavailable, restarting in %.1fs: %s", self.group, delay, exc)
            except Stopped:
                log.info("consumer %s: stopped while waiting to retry an event; it comes again on restart",
                         self.group)
            finally:
                try:
                    await consumer.stop()
                except Exception:  # noqa: BLE001 - stopping a broken consumer may fail too
                    log.debug("consumer %s: stop failed", self.group, exc_info=True)
            await pause(self.stopping, delay)
            delay = min(delay * 2, 5.0)

    async def _consume(self, consumer: Consumer) -> None:
        while not self.stopping.is_set():
            messages = await consumer.poll(max_records=self.batch_size, timeout=0.5)
            last: dict[tuple[str, int], Message] = {}
            try:
                if len(messages) > 1 and await self._apply_batch(messages):
                    last = {(m.topic, m.partition): m for m in messages}
                    messages = []
                for message in messages:
                    await self.handle(message)
                    last[(message.topic, message.partition)] = message
            finally:
                # Commit what was handled, even when a later message stopped the batch.
                if last:
                    faults.failpoint("consumer.before_offset_commit")
                    await consumer.commit_all(list(last.values()))
            await self._report_lag(consumer)

    async def _apply_batch(self, messages: list[Message]) -> bool:
        """Fast path: every message of the batch in one transaction (one commit, one fsync).

        Unreadable messages are set aside and dead-lettered once the others committed.
        Returns False, having changed nothing, when a handler or the database fails: the
        careful path then retries each message on its own and reports it.
        """
        work: list[tuple[Event, Handler]] = []
        unreadable: list[tuple[Message, Exception]] = []
        for message in messages:
            try:
                event = parse_event(message.value)
            except (MalformedEvent, UnknownEvent) as exc:
                unreadable.append((message, exc))
                continue
            handler = self.handlers.get(event.type)
            if handler is not None:
                work.append((event, handler))
        if work:
            try:
                async with self.database.transaction() as session:
                    ids = list(dict.fromkeys(str(event.id) for event, _ in work))
                    fresh = await claim_events(session, self.group, ids)
                    todo = []
                    for event, handler in work:
                        key = str(event.id)
                        if key in fresh:
                            fresh.discard(key)  # a repeat later in the batch is skipped
                            todo.append((event, handler))
                    for handler, events in plan_batch(todo):
                        await self._run(session, handler, events)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the careful path retries and reports each one
                log.debug("consumer %s: batch of %d failed, applying one by one", self.group, len(work),
                          exc_info=True)
                return False
            faults.failpoint("consumer.after_handler_commit")
            for event, _ in work:
                EVENTS_CONSUMED.labels(self.service, self.group, event.type).inc()
        for message, exc in unreadable:
            self._report_unreadable(message, exc)
            await self.dead_letter(message, exc, message.header("type") or "unknown")
        return True

    @staticmethod
    async def _run(session: AsyncSession, handler: Handler, events: list[Event]) -> None:
        if not isinstance(handler, BatchHandler):
            await apply_each(handler, session, events)
            return
        # One call for many events: under the first one's trace id (the careful path logs each).
        token = set_trace_id(events[0].trace_id)
        try:
            await handler.apply_many(session, events)
        finally:
            reset_trace_id(token)

    def _report_unreadable(self, message: Message, exc: Exception) -> None:
        log.error("consumer %s: cannot read message %s/%s@%s: %s", self.group, message.topic,
                  message.partition, message.offset, exc)

    async def handle(self, message: Message) -> None:
        try:
            event = parse_event(message.value)
        except (MalformedEvent, UnknownEvent) as exc:
            self._report_unreadable(message, exc)
            await self.dead_letter(message, exc, message.header("type") or "unknown")
            return
        handler = self.handlers.get(event.type)
        if handler is None:
            return  # another consumer's event on a shared topic
        token = set_trace_id(event.trace_id)
        try:
            await self._apply(message, event, handler)
        finally:
            reset_trace_id(token)

    async def _apply(self, message: Message, event: Event, handler: Handler) -> None:
        attempt = 0
        transient_delay = self.backoff
        while True:
            try:
                async with self.database.transaction() as session:
                    if await claim_event(session, self.group, str(event.id)):
                        await handler(session, event)
                faults.failpoint("consumer.after_handler_commit")
                EVENTS_CONSUMED.labels(self.service, self.group, event.type).inc()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a handler bug: retry, then dead-letter
                if is_transient(exc):
                    # The database is unreachable or locked: the event is fine, wait for it.
                    EVENTS_FAILED.labels(self.service, self.group, event.type).inc()
                    log.warning("consumer %s: database unavailable for %s, retrying in %.1fs: %s",
                                self.group, event.id, transient_delay, type(exc).__name__)
                    if await pause(self.stopping, transient_delay):
                        raise Stopped
                    transient_delay = min(transient_delay * 2, 5.0)
                    continue
                attempt += 1
                EVENTS_FAILED.labels(self.service, self.group, event.type).inc()
                log.warning("consumer %s: handler failed for %s (attempt %d of %d): %r",
                            self.group, event.id, attempt, self.max_attempts, exc,
                            extra={"event_id": str(event.id), "event_type": event.type})
                if attempt >= self.max_attempts:
                    await self.dead_letter(message, exc, event.type)
                    return
                if await pause(self.stopping, self.backoff * 2 ** (attempt - 1)):
                    raise Stopped

    async def dead_letter(self, message: Message, error: Exception, event_type: str) -> None:
        reason = json.dumps({"error": type(error).__name__, "detail": str(error)[:2000]}, ensure_ascii=False)
        await self.bus.publish([OutgoingMessage(
            topic=DEAD_LETTER_TOPIC, key=message.key, value=message.value,
            headers=(
                ("type", event_type.encode()),
                ("original_topic", message.topic.encode()),
                ("original_partition", str(message.partition).encode()),
                ("original_offset", str(message.offset).encode()),
                ("consumer", self.group.encode()),
                ("error", reason.encode()),
            ),
        )])
        EVENTS_DEAD_LETTERED.labels(self.service, self.group, event_type).inc()

    async def _report_lag(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if now - self._last_lag_check < 5:
            return
        self._last_lag_check = now
        try:
            for topic, lag in (await consumer.lag()).items():
                CONSUMER_LAG.labels(self.service, self.group, topic).set(lag)
        except Exception:  # noqa: BLE001 - a metric must never stop the consumer
            log.debug("could not measure consumer lag", exc_info=True)
