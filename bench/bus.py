"""Events per second through outbox -> bus -> idempotent consumer, with end-to-end latency.

    python -m bench.bus                       # embedded mode (SQLite + embedded bus)
    KHAIBAO_TEST_POSTGRES_URL=postgresql://u:p@127.0.0.1:5432/postgres \\
    KHAIBAO_TEST_KAFKA_BOOTSTRAP=127.0.0.1:9092 python -m bench.bus --events 20000

Writers commit one event per transaction (as a request does), concurrently, in this
process with its relay (the producing service); a consumer group in a second process (the
consuming service) applies each event once in its own database, recording the time from
the event's creation in the producer's transaction to the consumer's commit. Bounded by --events and
--timeout; everything runs on loopback. Prints a table (Markdown) for the README.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import Column, Double, MetaData, String, Table, func, select

from libs.common.bus import create_bus
from libs.common.consumer import EventConsumer
from libs.common.db import Database
from libs.common.events.intake import RegistrationSubmitted, RegistrationSubmittedData
from libs.common.outbox import metadata as common_metadata
from libs.common.outbox import OutboxRelay, publish
from bench.pgdb import create_database

effects_metadata = MetaData()
effects = Table(
    "bench_effects", effects_metadata,
    Column("event_id", String(36), primary_key=True),
    Column("committed_at", Double, nullable=False),
    Column("applied_at", Double, nullable=False),
)


def make_event(i: int) -> RegistrationSubmitted:
    return RegistrationSubmitted(
        producer="bench", jurisdiction="79/787/27664",
        data=RegistrationSubmittedData(
            registration_id=uuid.uuid4(), reference=f"BENCH-{i}", unit_name=f"Đơn vị thử {i}", unit_type="market",
            address="1 Lương Văn Nho", commune_path="79/787/27664", receiver="commune",
            contact_name="Người thử", contact_phone="0900000000"),
    )


async def create_schema(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(common_metadata.create_all)
        await conn.run_sync(effects_metadata.create_all)


async def pg_database(admin_url: str) -> str:
    return (await create_database(admin_url, "bench"))[1]


async def consume(consumer_url: str, bus_url: str, namespace: str, group: str) -> None:
    """The consuming service: its own process, its own database, until killed."""
    consumer_db = Database(consumer_url, sqlite_synchronous="FULL")
    bus = create_bus(bus_url, namespace=namespace)
    await bus.start()

    async def handler(session, event) -> None:  # noqa: ANN001
        await session.execute(effects.insert().values(
            event_id=str(event.id), committed_at=event.occurred_at.timestamp(), applied_at=time.time()))

    consumer = EventConsumer(consumer_db, bus, "bench", group, {"intake.registration.submitted": handler},
                             batch_size=500)
    await consumer.run()


async def run(name: str, producer_url: str, consumer_url: str, bus_url: str, events: int, writers: int,
              timeout: float, namespace: str) -> dict:
    producer_db = Database(producer_url, sqlite_synchronous="FULL", pool_size=writers)
    consumer_db = Database(consumer_url, sqlite_synchronous="FULL")
    await create_schema(producer_db)
    await create_schema(consumer_db)
    bus = create_bus(bus_url, namespace=namespace)
    await bus.start()
    group = f"bench-{uuid.uuid4().hex[:6]}"
    consumer_process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bus", "consume", consumer_url, bus_url, namespace or "-", group,
        stderr=asyncio.subprocess.DEVNULL)
    relay = OutboxRelay(producer_db, bus, "bench", batch_size=500, poll_interval=0.05)
    relay_task = asyncio.create_task(relay.run())
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(events):
        queue.put_nowait(i)

    async def writer() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            # occurred_at is set as the transaction commits: latency runs from the commit.
            async with producer_db.transaction() as session:
                await publish(session, make_event(i))

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    written = time.perf_counter() - started
    deadline = time.monotonic() + timeout
    applied = 0
    while time.monotonic() < deadline:
        async with consumer_db.transaction(readonly=True) as session:
            applied = (await session.execute(select(func.count()).select_from(effects))).scalar_one()
        if applied >= events:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    async with consumer_db.transaction(readonly=True) as session:
        rows = (await session.execute(select(effects.c.committed_at, effects.c.applied_at))).all()
    consumer_process.kill()
    await consumer_process.wait()
    relay_task.cancel()
    await asyncio.gather(relay_task, return_exceptions=True)
    await bus.stop()
    await producer_db.dispose()
    await consumer_db.dispose()
    latencies = sorted((applied_at - committed_at) * 1000 for committed_at, applied_at in rows)
    return {
        "backend": name, "events": events, "writers": writers, "applied": applied, "lost": events - applied,
        "write_rate": events / written, "rate": applied / elapsed,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("nan"),
    }


def print_table(results: list[dict]) -> None:
    print("\n| backend | events | writers | committed/s | end-to-end events/s | p50 ms | p99 ms | lost |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['backend']} | {r['events']} | {r['writers']} | {r['write_rate']:.0f} | {r['rate']:.0f} "
              f"| {r['p50']:.0f} | {r['p99']:.0f} | {r['lost']} |")


async def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "consume":
        consumer_url, bus_url, namespace, group = sys.argv[2:6]
        await consume(consumer_url, bus_url, "" if namespace == "-" else namespace, group)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--only", choices=["embedded", "kafka"])
    args = parser.parse_args()
    results = []
    if args.only in (None, "embedded"):
        with tempfile.TemporaryDirectory(prefix="khaibao-bench-") as tmp:
            base = Path(tmp)
            results.append(await run(
                "SQLite + embedded bus", f"sqlite+aiosqlite:///{base / 'producer.db'}",
                f"sqlite+aiosqlite:///{base / 'consumer.db'}", f"embedded://{base / 'bus.db'}",
                args.events, args.writers, args.timeout, ""))
    pg, kafka = os.environ.get("KHAIBAO_TEST_POSTGRES_URL"), os.environ.get("KHAIBAO_TEST_KAFKA_BOOTSTRAP")
    if args.only in (None, "kafka"):
        if pg and kafka:
            results.append(await run(
                "PostgreSQL + Kafka", await pg_database(pg), await pg_database(pg), f"kafka://{kafka}",
                args.events, args.writers, args.timeout, f"bench{uuid.uuid4().hex[:6]}."))
        else:
            print("PostgreSQL + Kafka skipped: set KHAIBAO_TEST_POSTGRES_URL and KHAIBAO_TEST_KAFKA_BOOTSTRAP")
    print_table(results)


if __name__ == "__main__":
    asyncio.run(main())
