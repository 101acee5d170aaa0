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
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from . import faults
from .bus import Bus, BusUnavailable, Consumer, Message, OutgoingMessage
from .db import Database
from .events import DEAD_LETTER_TOPIC, Event, MalformedEvent, UnknownEvent, parse_event, topic_for
from .observability import (
    CONSUMER_LAG, EVENTS_CONSUMED, EVENTS_DEAD_LETTERED, EVENTS_FAILED, reset_trace_id, set_trace_id,
)
from .outbox import processed_events

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Event], Awaitable[None]]
TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, ConnectionError,
             OSError, asyncio.TimeoutError)
# SQLSTATE classes of a database that is going away or not back yet (PostgreSQL restarting:
# 57P01 admin_shutdown, 57P03 cannot_connect_now; 08 connection exceptions; 53 resources).
TRANSIENT_SQLSTATES = ("08", "57P", "53")


def is_transient(exc: BaseException) -> bool:
    """The database is unreachable, restarting or locked: the event is fine, wait for it.

    asyncpg reports a server shutting down or starting up as a plain DBAPIError (not an
    OperationalError); treated as a handler failure, the event would be dead-lettered.
    """
    if isinstance(exc, TRANSIENT):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return isinstance(state, str) and state.startswith(TRANSIENT_SQLSTATES)
    return False


def chain_handlers(*maps: Mapping[str, Handler]) -> dict[str, Handler]:
    """One handler map from several (one per read model): handlers of the same event type
    run in the order given, in the same transaction."""
    chains: dict[str, list[Handler]] = {}
    for handlers in maps:
        for event_type, handler in handlers.items():
            chains.setdefault(event_type, []).append(handler)

    def chained(steps: list[Handler]) -> Handler:
        if len(steps) == 1:
            return steps[0]

        async def run_all(session: AsyncSession, event: Event) -> None:
            for step in steps:
                await step(session, event)
        return run_all

    return {event_type: chained(steps) for event_type, steps in chains.items()}


async def claim_event(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` handles ``event_id``; False if it already did."""
    dialect = session.bind.dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(processed_events)
    result = await session.execute(
        insert.values(consumer=consumer, event_id=event_id, processed_at=time.time())
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
    )
    return result.rowcount == 1


class EventConsumer:
    def __init__(self, database: Database, bus: Bus, service: str, group: str,
                 handlers: Mapping[str, Handler], *, max_attempts: int = 5, backoff: float = 0.2,
                 batch_size: int = 200) -> None:
        self.database = database
        self.bus = bus
        self.service = service
        self.group = group
        self.handlers = dict(handlers)
        self.topics = sorted({topic_for(t) for t in self.handlers})
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.batch_size = batch_size
        self._last_lag_check = 0.0

    async def run(self) -> None:
        delay = 0.2
        while True:
            consumer = self.bus.consumer(self.group, self.topics)
            try:
                await consumer.start()
                delay = 0.2
                await self._consume(consumer)
            except BusUnavailable as exc:
                log.warning("consumer %s: bus unavailable, restarting in %.1fs: %s", self.group, delay, exc)
            finally:
                try:
                    await consumer.stop()
                except Exception:  # noqa: BLE001 - stopping a broken consumer may fail too
                    log.debug("consumer %s: stop failed", self.group, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _consume(self, consumer: Consumer) -> None:
        while True:
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

        Returns False, having changed nothing, when any message needs the careful path:
        unreadable (dead letter), or a handler or the database failing (retries).
        """
        work = []
        for message in messages:
            try:
                event = parse_event(message.value)
            except (MalformedEvent, UnknownEvent):
                return False
            handler = self.handlers.get(event.type)
            if handler is not None:
                work.append((event, handler))
        if not work:
            return True
        try:
            async with self.database.transaction() as session:
                for event, handler in work:
                    token = set_trace_id(event.trace_id)
                    try:
                        if await claim_event(session, self.group, str(event.id)):
                            await handler(session, event)
                    finally:
                        reset_trace_id(token)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the careful path retries and reports each one
            log.debug("consumer %s: batch of %d failed, applying one by one", self.group, len(work), exc_info=True)
            return False
        faults.failpoint("consumer.after_handler_commit")
        for event, _ in work:
            EVENTS_CONSUMED.labels(self.service, self.group, event.type).inc()
        return True

    async def handle(self, message: Message) -> None:
        try:
            event = parse_event(message.value)
        except (MalformedEvent, UnknownEvent) as exc:
            log.error("consumer %s: cannot read message %s/%s@%s: %s", self.group, message.topic,
                      message.partition, message.offset, exc)
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
                    await asyncio.sleep(transient_delay)
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
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))

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
