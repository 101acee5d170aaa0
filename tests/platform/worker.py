"""A producing or consuming process for the fault tests, built from the real library code.

    python -m tests.platform.worker produce [--count N | --until-stopped] [--interval S] [--lease S] ...
    python -m tests.platform.worker consume --deliveries FILE [--bus-lease S]
    python -m tests.platform.worker lock-bus --path BUS_FILE --seconds S

The database and the bus come from the environment (see ``support.worker_env``):
KHAIBAO_PLATFORM_DB_URL, KHAIBAO_PLATFORM_BUS_URL, KHAIBAO_PLATFORM_BUS_NAMESPACE, and
KHAIBAO_FAILPOINT arms a failpoint (libs/common/faults.py) that SIGKILLs the process.

``produce`` is a service that accepts items: each one is a row in its own table and an event
in the outbox, in one transaction; its outbox relay runs beside it. It exits once it has
written everything (or got SIGTERM) and its outbox is empty. ``consume`` runs the idempotent
consumer with the effect handler until SIGTERM, and appends every message the bus hands it
to the delivery log, so that a test can see redeliveries. ``lock-bus`` holds the write lock
of an embedded bus file: for that time the bus is unavailable to everyone else.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from libs.common.bus import Bus, Consumer, Message, OutgoingMessage
from libs.common.db import Database
from libs.common.outbox import OutboxRelay

from .support import ENV_BUS, ENV_DB, ENV_NAMESPACE, accept_item, make_consumer, open_bus, outbox_count

log = logging.getLogger("platform-worker")


class RecordingConsumer(Consumer):
    """Delegates to the real consumer and notes every message it returns."""

    def __init__(self, inner: Consumer, deliveries: Path) -> None:
        self.inner = inner
        self.group = inner.group
        self.topics = inner.topics
        self.deliveries = deliveries

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def poll(self, max_records: int = 100, timeout: float = 0.5) -> list[Message]:
        messages = await self.inner.poll(max_records=max_records, timeout=timeout)
        if messages:
            lines = []
            for m in messages:
                try:
                    event_id = json.loads(m.value)["id"]
                except (ValueError, KeyError, TypeError):
                    event_id = None
                lines.append(json.dumps({"pid": os.getpid(), "id": event_id, "topic": m.topic,
                                         "partition": m.partition, "offset": m.offset}))
            with open(self.deliveries, "a") as fh:
                fh.write("\n".join(lines) + "\n")
        return messages

    async def commit(self, message: Message) -> None:
        await self.inner.commit(message)

    async def lag(self) -> dict[str, int]:
        return await self.inner.lag()


class RecordingBus(Bus):
    def __init__(self, inner: Bus, deliveries: Path) -> None:
        self.inner = inner
        self.deliveries = deliveries

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        await self.inner.ensure_topics(topics)

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        await self.inner.publish(messages)

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return RecordingConsumer(self.inner.consumer(group, topics), self.deliveries)

    async def ping(self) -> None:
        await self.inner.ping()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _bus(args: argparse.Namespace) -> Bus:
    return open_bus(os.environ[ENV_BUS], os.environ.get(ENV_NAMESPACE, ""), lease_seconds=args.bus_lease)


async def produce(args: argparse.Namespace) -> int:
    stop = _stop_event()
    database = Database(os.environ[ENV_DB])
    bus = _bus(args)
    await bus.start()
    relay = OutboxRelay(database, bus, "platform-worker", lease_seconds=args.lease, poll_interval=0.1,
                        max_backoff=args.max_backoff)
    written = 0
    relay_task: asyncio.Task | None = None

    async def write() -> None:
        nonlocal written
        while (args.until_stopped or written < args.count) and not stop.is_set():
            item_id = args.key or f"{args.prefix}-{written % 16}"
            await accept_item(database, item_id, written)
            written += 1
            if args.interval:
                await asyncio.sleep(args.interval)

    try:
        if args.relay_after_writes:
            await write()
            relay_task = asyncio.create_task(relay.run())
        else:
            relay_task = asyncio.create_task(relay.run())
            await write()
        print(json.dumps({"written": written}), flush=True)
        deadline = time.monotonic() + args.drain_timeout
        while await outbox_count(database) > 0:
            if relay_task.done():
                relay_task.result()
            if time.monotonic() > deadline:
                log.error("the outbox is not empty after %.0f s", args.drain_timeout)
                return 1
            await asyncio.sleep(0.1)
        print(json.dumps({"drained": True}), flush=True)
        return 0
    finally:
        if relay_task is not None:
            relay_task.cancel()
            await asyncio.gather(relay_task, return_exceptions=True)
        await bus.stop()
        await database.dispose()


async def consume(args: argparse.Namespace) -> int:
    stop = _stop_event()
    database = Database(os.environ[ENV_DB])
    bus = RecordingBus(_bus(args), Path(args.deliveries))
    await bus.start()
    consumer = make_consumer(database, bus)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait([task, asyncio.create_task(stop.wait())], timeout=args.timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            return 1
        return 0 if stop.is_set() else 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.stop()
        await database.dispose()


def lock_bus(args: argparse.Namespace) -> int:
    """Take the write lock of the embedded bus file (WAL: BEGIN EXCLUSIVE) and keep it."""
    db = sqlite3.connect(args.path, timeout=60, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(args.seconds)
    db.execute("ROLLBACK")
    db.close()
    print("released", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.platform.worker")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--until-stopped", action="store_true", help="write until SIGTERM, then drain")
    p.add_argument("--interval", type=float, default=0.0, help="pause between two accepted items")
    p.add_argument("--prefix", default="item")
    p.add_argument("--key", help="one item id (one partition) for every event")
    p.add_argument("--relay-after-writes", action="store_true", help="write everything, then start the relay")
    p.add_argument("--lease", type=float, default=30.0, help="outbox lease of the relay, seconds")
    p.add_argument("--max-backoff", type=float, default=5.0)
    p.add_argument("--drain-timeout", type=float, default=120.0)
    c = sub.add_parser("consume")
    c.add_argument("--deliveries", required=True, help="append one JSON line per delivered message")
    c.add_argument("--timeout", type=float, default=300.0, help="exit anyway after this many seconds")
    for sp in (p, c):
        sp.add_argument("--bus-lease", type=float, default=2.0, help="embedded bus: group lease, seconds")
    lk = sub.add_parser("lock-bus")
    lk.add_argument("--path", required=True)
    lk.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"%(asctime)s [{args.command} {os.getpid()}] %(levelname)s %(name)s: %(message)s")
    if args.command == "lock-bus":
        return lock_bus(args)
    return asyncio.run(produce(args) if args.command == "produce" else consume(args))


if __name__ == "__main__":
    sys.exit(main())
