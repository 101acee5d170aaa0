"""Helpers of the platform tests: schema, test-only event types, runners, bus readers.

The event types here are registered only when the tests import this module. They live in
their own domain, ``platformtest``, so their topic (``khaibao.platformtest``) never clashes
with a service's topic.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

from sqlalchemy import Column, Double, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import outbox
from libs.common.bus import Bus, Message, OutgoingMessage, create_bus
from libs.common.consumer import EventConsumer
from libs.common.db import Database
from libs.common.events import Event, EventData, register, topic_for, upcaster

ROOT = Path(__file__).resolve().parents[2]

RECORDED = "platformtest.item.recorded"
LABELLED = "platformtest.item.labelled"
TOPIC = topic_for(RECORDED)  # khaibao.platformtest
GROUP = "platform-consumer"
PRODUCER = "platform-test"
JURISDICTION = "79"  # Ho Chi Minh City

# Environment of the worker processes (tests/platform/worker.py).
ENV_DB = "KHAIBAO_PLATFORM_DB_URL"
ENV_BUS = "KHAIBAO_PLATFORM_BUS_URL"
ENV_NAMESPACE = "KHAIBAO_PLATFORM_BUS_NAMESPACE"


# -- event types registered only by the tests ----------------------------------------------

class ItemRecordedData(EventData):
    item_id: str
    value: int


@register
class ItemRecorded(Event):
    type: Literal["platformtest.item.recorded"] = "platformtest.item.recorded"
    data: ItemRecordedData

    def partition_key(self) -> str:
        return self.data.item_id


class ItemLabelledData(EventData):
    item_id: str
    label: str
    origin: str


@register
class ItemLabelled(Event):
    """Version 2; version 1 carried ``{"item_id", "name"}`` and is upcast on the way in."""

    current_version: ClassVar[int] = 2
    type: Literal["platformtest.item.labelled"] = "platformtest.item.labelled"
    data: ItemLabelledData

    def partition_key(self) -> str:
        return self.data.item_id


@upcaster(LABELLED, 1)
def _labelled_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"item_id": data["item_id"], "label": data["name"], "origin": "v1"}


def recorded(item_id: str, value: int) -> ItemRecorded:
    return ItemRecorded(producer=PRODUCER, jurisdiction=JURISDICTION,
                        data=ItemRecordedData(item_id=item_id, value=value))


def labelled(item_id: str, label: str) -> ItemLabelled:
    return ItemLabelled(producer=PRODUCER, jurisdiction=JURISDICTION,
                        data=ItemLabelledData(item_id=item_id, label=label, origin="v2"))


def raw_envelope(event_type: str, data: dict[str, Any], *, version: int = 1, **fields: Any) -> dict[str, Any]:
    """An envelope built by hand, for payloads the typed classes would refuse to build."""
    envelope = {
        "id": str(uuid.uuid4()), "type": event_type, "version": version,
        "occurred_at": "2021-08-01T07:00:00+07:00", "producer": PRODUCER,
        "trace_id": uuid.uuid4().hex, "jurisdiction": JURISDICTION, "data": data,
    }
    envelope.update(fields)
    return envelope


def message_of(event: Event) -> OutgoingMessage:
    """The message the relay would publish for ``event``."""
    return OutgoingMessage(topic=event.topic, key=event.partition_key().encode(), value=event.to_bytes(),
                           headers=(("type", event.type.encode()), ("trace_id", event.trace_id.encode())))


# -- schema ---------------------------------------------------------------------------------

test_metadata = MetaData()

# The producer's own state: one row per accepted item, written with its event.
items = Table(
    "platform_items", test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(64), nullable=False),
    Column("value", Integer, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("created_at", Double, nullable=False),
)

# The consumer's effect: one row per application of an event. No unique constraint, on
# purpose: an event applied twice shows up as two rows.
effects = Table(
    "platform_effects", test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("consumer", String(80), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(120), nullable=False),
    Column("version", Integer, nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("value", Integer, nullable=True),
    Column("label", String(200), nullable=True),
    Column("applied_at", Double, nullable=False),
)


async def create_schema(database: Database) -> None:
    """The common tables (outbox, processed_events) and the test tables."""
    async with database.engine.begin() as connection:
        await connection.run_sync(outbox.metadata.create_all)
        await connection.run_sync(test_metadata.create_all)


async def open_database(url: str) -> Database:
    database = Database(url)
    await create_schema(database)
    return database


def open_bus(url: str, namespace: str = "", **options: Any) -> Bus:
    if namespace:
        options["namespace"] = namespace
    return create_bus(url, **options)


# -- producing and consuming ---------------------------------------------------------------

async def accept_item(database: Database, item_id: str, value: int) -> ItemRecorded:
    """A use case: record the item and its event in one transaction (transactional outbox)."""
    event = recorded(item_id, value)
    async with database.transaction() as session:
        await session.execute(items.insert().values(item_id=item_id, value=value, event_id=str(event.id),
                                                    created_at=time.time()))
        await outbox.publish(session, event)
    return event


async def apply_effect(session: AsyncSession, event: Event, consumer: str = GROUP) -> None:
    data = event.data
    await session.execute(effects.insert().values(
        consumer=consumer, event_id=str(event.id), event_type=event.type, version=event.version,
        item_id=data.item_id, value=getattr(data, "value", None), label=getattr(data, "label", None),
        applied_at=time.time(),
    ))


def effect_handlers(*types: str) -> dict[str, Callable[[AsyncSession, Event], Awaitable[None]]]:
    return {t: apply_effect for t in (types or (RECORDED,))}


def make_consumer(database: Database, bus: Bus, handlers=None, *, group: str = GROUP,  # noqa: ANN001
                  **options: Any) -> EventConsumer:
    return EventConsumer(database, bus, "platform-test", group, handlers or effect_handlers(), **options)


class Runner:
    """Background tasks (relays, consumers) of one test; a task that dies fails the test."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task] = []

    def start(self, coro: Awaitable[None], name: str) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self.tasks.append(task)
        return task

    def check(self) -> None:
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(f"background task {task.get_name()} died") from task.exception()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
        for result in results:
            if isinstance(result, Exception):
                raise result

    async def __aenter__(self) -> "Runner":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@asynccontextmanager
async def running(*, relays: Iterable[outbox.OutboxRelay] = (), consumers: Iterable[EventConsumer] = ()):
    async with Runner() as runner:
        for i, relay in enumerate(relays):
            runner.start(relay.run(), f"relay-{i}")
        for i, consumer in enumerate(consumers):
            runner.start(consumer.run(), f"consumer-{i}")
        yield runner


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 20, interval: float = 0.1,
                     what: str = "condition", runner: Runner | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if runner is not None:
            runner.check()
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


# -- reading state --------------------------------------------------------------------------

async def scalar(database: Database, query) -> Any:  # noqa: ANN001
    async with database.transaction(readonly=True) as session:
        return (await session.execute(query)).scalar_one()


async def rows(database: Database, query) -> list:  # noqa: ANN001
    async with database.transaction(readonly=True) as session:
        return list((await session.execute(query)).all())


async def outbox_count(database: Database) -> int:
    return await scalar(database, select(func.count()).select_from(outbox.outbox))


async def accepted_ids(database: Database) -> list[str]:
    return [r.event_id for r in await rows(database, select(items.c.event_id).order_by(items.c.id))]


async def applied_ids(database: Database, consumer: str = GROUP) -> list[str]:
    """One entry per application (a duplicate application appears twice)."""
    return [r.event_id for r in await rows(
        database, select(effects.c.event_id).where(effects.c.consumer == consumer).order_by(effects.c.id))]


async def processed_ids(database: Database, consumer: str = GROUP) -> list[str]:
    return [r.event_id for r in await rows(
        database, select(outbox.processed_events.c.event_id).where(outbox.processed_events.c.consumer == consumer))]


async def read_topic(bus: Bus, topics: Sequence[str], *, expect: int, group: str | None = None,
                     timeout: float = 20, settle: float = 1.0) -> list[Message]:
    """Everything on ``topics`` as seen by a fresh group: wait for ``expect`` messages, then
    keep listening ``settle`` seconds so that extra (duplicate) messages are counted too.
    Never commits."""
    consumer = bus.consumer(group or f"reader-{uuid.uuid4().hex[:8]}", list(topics))
    await consumer.start()
    messages: list[Message] = []
    try:
        deadline = time.monotonic() + timeout
        while len(messages) < expect and time.monotonic() < deadline:
            messages += await consumer.poll(max_records=500, timeout=0.3)
        quiet_until = time.monotonic() + settle
        while time.monotonic() < quiet_until:
            messages += await consumer.poll(max_records=500, timeout=0.2)
    finally:
        await consumer.stop()
    return messages


def event_ids(messages: Iterable[Message]) -> list[str]:
    ids = []
    for message in messages:
        try:
            ids.append(json.loads(message.value)["id"])
        except (ValueError, KeyError, TypeError):
            ids.append(f"<unreadable {message.topic}@{message.offset}>")
    return ids


def duplicates(values: Iterable[str]) -> int:
    """How many entries are repeats of an earlier one."""
    return sum(n - 1 for n in Counter(values).values())


# -- worker subprocesses -------------------------------------------------------------------

def worker_env(db_url: str, bus_url: str, namespace: str = "", failpoint: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KHAIBAO_FAILPOINT"}
    env.update({ENV_DB: db_url, ENV_BUS: bus_url, ENV_NAMESPACE: namespace, "PYTHONUNBUFFERED": "1"})
    if failpoint:
        env["KHAIBAO_FAILPOINT"] = failpoint
    return env


async def start_worker(*args: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """``python -m tests.platform.worker ARGS``; stdout and stderr are appended to ``log``."""
    with open(log, "ab") as out:
        out.write(f"--- worker {' '.join(args)} (failpoint={env.get('KHAIBAO_FAILPOINT')})\n".encode())
        out.flush()
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.platform.worker", *args, cwd=ROOT, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT)


async def wait_worker(process: asyncio.subprocess.Process, timeout: float, log: Path) -> int:
    try:
        return await asyncio.wait_for(process.wait(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"worker {process.pid} did not finish within {timeout:.0f} s\n{tail(log)}") from None


async def stop_worker(process: asyncio.subprocess.Process, timeout: float = 20) -> int | None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
    return process.returncode


def tail(log: Path, lines: int = 60) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no worker log)"
    return "--- worker log:\n" + "\n".join(text.splitlines()[-lines:])


def deliveries(path: Path) -> list[dict]:
    """The delivery log a consuming worker writes: one JSON object per message handed to it."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
