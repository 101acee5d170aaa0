"""Processes die and the bus goes away; nothing is lost and nothing is applied twice (rule 2).

Each test drives real processes (``tests/platform/worker.py``) on both backends. A failpoint
(``KHAIBAO_FAILPOINT``, libs/common/faults.py) SIGKILLs a process at the worst moment:

* a producer after its relay claimed committed events, before it published them (SQLite:
  the lease is waited out; PostgreSQL: the claim's transaction died with the process);
* a producer after publishing, before deleting the outbox rows (they go out twice);
* a consumer after its transaction committed, before it committed the bus offset.

The last test stops the bus for 30 s while a producer keeps accepting events (Kafka: a
private broker is stopped and started again; embedded bus: another process holds the bus
file's write lock) and the consumer process is killed and restarted during the outage.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from libs.common import outbox
from libs.common.bus import Message

from tests import engines
from tests.infra.kafka_local import LocalKafka

from .support import (
    GROUP, ROOT, TOPIC, accept_item, accepted_ids, applied_ids, deliveries, duplicates, event_ids, eventually,
    items, make_consumer, open_bus, open_database, outbox_count, processed_ids, read_topic, rows, running,
    start_worker, stop_worker, tail, wait_worker, worker_env,
)

pytestmark = pytest.mark.slow

KILLED = -signal.SIGKILL
LEASE = 2.0  # outbox lease of the killed relays: the restarted one waits this long at most


@pytest.fixture
async def fault(backend, tmp_path):
    producer_url = await backend.database_url("producer")
    consumer_url = await backend.database_url("consumer")
    producer_db = await open_database(producer_url)
    consumer_db = await open_database(consumer_url)
    namespace = backend.bus_options().get("namespace", "")
    bus = open_bus(backend.bus_url, namespace)
    await bus.start()
    await bus.ensure_topics([TOPIC])
    workers: list[asyncio.subprocess.Process] = []
    f = SimpleNamespace(
        backend=backend, db=producer_db, consumer_db=consumer_db, bus=bus, log=tmp_path / "workers.log",
        deliveries=tmp_path / "deliveries.jsonl",
        producer_env=lambda failpoint=None: worker_env(producer_url, backend.bus_url, namespace, failpoint),
        consumer_env=lambda failpoint=None: worker_env(consumer_url, backend.bus_url, namespace, failpoint),
    )

    async def worker(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
        process = await start_worker(*args, env=env, log=f.log)
        workers.append(process)
        return process

    f.worker = worker
    try:
        yield f
    finally:
        for process in workers:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await bus.stop()
        await producer_db.dispose()
        await consumer_db.dispose()


async def leases(database) -> list:  # noqa: ANN001
    return await rows(database, select(outbox.outbox.c.event_id, outbox.outbox.c.lease_owner,
                                       outbox.outbox.c.lease_until))


async def applied_all(database, ids: list[str]) -> bool:  # noqa: ANN001
    return set(ids) <= set(await applied_ids(database))


async def test_producer_killed_between_claim_and_publish(fault) -> None:
    f = fault
    first = await f.worker("produce", "--count", "5", "--key", "fault-a", "--relay-after-writes",
                           "--lease", str(LEASE), env=f.producer_env("relay.after_claim"))
    assert await wait_worker(first, 60, f.log) == KILLED, tail(f.log)

    accepted = await accepted_ids(f.db)
    assert len(accepted) == 5, "the writes committed before the relay ran"
    claimed = await leases(f.db)
    assert sorted(r.event_id for r in claimed) == sorted(accepted), "the dead relay removed nothing"
    assert await read_topic(f.bus, [TOPIC], expect=0, settle=1.0) == [], "nothing was published"

    if f.backend.name == "embedded":
        # SQLite: the dead relay had leased them; a new relay waits the lease out.
        assert all(r.lease_owner for r in claimed), "the dead relay had claimed them"
        lease_left = max(r.lease_until for r in claimed) - time.time()
        started = time.monotonic()
        second = await f.worker("produce", "--count", "0", "--lease", str(LEASE), env=f.producer_env())
        assert await wait_worker(second, 60, f.log) == 0, tail(f.log)
        assert time.monotonic() - started >= lease_left - 0.1, "the dead relay's lease must be waited out"
    else:
        # PostgreSQL: the dead relay took them in a transaction that died with its connection;
        # no lease was written, and another relay takes them as soon as the server has seen it go.
        assert not any(r.lease_owner for r in claimed), "no lease on PostgreSQL"
        relay = outbox.OutboxRelay(f.db, f.bus, "platform-test", lease_seconds=3600)
        taken = 0

        async def taken_all() -> bool:
            nonlocal taken
            taken += await relay.relay_once()
            return taken == 5

        await eventually(taken_all, what="the dead relay's rows taken by another relay")
    assert await outbox_count(f.db) == 0

    on_bus = event_ids(await read_topic(f.bus, [TOPIC], expect=5))
    assert sorted(on_bus) == sorted(accepted)
    async with running(consumers=[make_consumer(f.consumer_db, f.bus)]) as runner:
        await eventually(lambda: applied_all(f.consumer_db, accepted), what="all 5 applied", runner=runner)
        await asyncio.sleep(0.5)
    assert Counter(await applied_ids(f.consumer_db)) == {i: 1 for i in accepted}
    assert sorted(await processed_ids(f.consumer_db)) == sorted(accepted)


async def test_producer_killed_between_publish_and_delete(fault) -> None:
    f = fault
    consumer = make_consumer(f.consumer_db, f.bus)
    async with running(consumers=[consumer]) as runner:
        first = await f.worker("produce", "--count", "5", "--key", "fault-b", "--relay-after-writes",
                               "--lease", str(LEASE), env=f.producer_env("relay.after_publish"))
        assert await wait_worker(first, 60, f.log) == KILLED, tail(f.log)
        accepted = await accepted_ids(f.db)
        assert len(accepted) == 5
        assert sorted(r.event_id for r in await leases(f.db)) == sorted(accepted), "published but not deleted"
        await eventually(lambda: applied_all(f.consumer_db, accepted), what="the first copies applied",
                         runner=runner)

        second = await f.worker("produce", "--count", "0", "--lease", str(LEASE), env=f.producer_env())
        assert await wait_worker(second, 60, f.log) == 0, tail(f.log)
        assert await outbox_count(f.db) == 0
        # A last event on the same key is read after the second copies: once it is applied,
        # the consumer has seen every copy.
        barrier = await accept_item(f.db, "fault-b", 99)
        relay = outbox.OutboxRelay(f.db, f.bus, "platform-test")
        assert await relay.relay_once() == 1
        await eventually(lambda: applied_all(f.consumer_db, [str(barrier.id)]), what="the barrier",
                         runner=runner)

    everything = [*accepted, str(barrier.id)]
    on_bus = event_ids(await read_topic(f.bus, [TOPIC], expect=11))
    assert Counter(on_bus) == {**{i: 2 for i in accepted}, str(barrier.id): 1}, "each was published twice"
    assert Counter(await applied_ids(f.consumer_db)) == {i: 1 for i in everything}
    assert sorted(await processed_ids(f.consumer_db)) == sorted(everything)


async def test_consumer_killed_between_its_commit_and_the_offset_commit(fault) -> None:
    f = fault
    events = [await accept_item(f.db, "fault-c", n) for n in range(5)]
    ids = [str(e.id) for e in events]
    assert await outbox.OutboxRelay(f.db, f.bus, "platform-test").relay_once() == 5

    first = await f.worker("consume", "--deliveries", str(f.deliveries),
                           env=f.consumer_env("consumer.before_offset_commit"))
    assert await wait_worker(first, 90, f.log) == KILLED, tail(f.log)
    handled = await applied_ids(f.consumer_db)
    assert handled and Counter(handled) == {i: 1 for i in handled}, "its transaction committed"
    assert set(handled) <= set(ids)
    assert sorted(await processed_ids(f.consumer_db)) == sorted(handled)

    second = await f.worker("consume", "--deliveries", str(f.deliveries), env=f.consumer_env())

    async def redelivered() -> bool:
        again = {d["id"] for d in deliveries(f.deliveries) if d["pid"] == second.pid}
        return set(handled) <= again and await applied_all(f.consumer_db, ids)

    await eventually(redelivered, timeout=60, what="the redelivery to the restarted consumer")
    await asyncio.sleep(1.0)  # let it commit the offsets
    assert await stop_worker(second) == 0, tail(f.log)

    by_pid = Counter((d["pid"], d["id"]) for d in deliveries(f.deliveries))
    assert all(by_pid[(first.pid, i)] == 1 for i in handled)
    assert all(by_pid[(second.pid, i)] == 1 for i in ids), "the uncommitted messages came again"
    assert Counter(await applied_ids(f.consumer_db)) == {i: 1 for i in ids}, "applied once"
    assert sorted(await processed_ids(f.consumer_db)) == sorted(ids)

    # The restarted consumer did commit: the group has nothing left to deliver.
    group = f.bus.consumer(GROUP, [TOPIC])
    await group.start()
    try:
        leftovers: list[Message] = []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            leftovers += await group.poll(timeout=0.3)
    finally:
        await group.stop()
    assert leftovers == []


# -- the broker away for 30 s --------------------------------------------------------------

OUTAGE_SECONDS = 30.0
WRITE_INTERVAL = 0.05  # the producer accepts about 20 events a second throughout


def kafka_classpath() -> Path:
    value = os.environ.get("KHAIBAO_KAFKA_CLASSPATH", "")
    reason = None
    if not value:
        reason = "KHAIBAO_KAFKA_CLASSPATH is not set (mvn -q -B -f deploy/kafka/pom.xml package)"
    elif not any(Path(value).glob("kafka_2.13-*.jar")):
        reason = f"no kafka_2.13 jar in KHAIBAO_KAFKA_CLASSPATH={value}"
    elif shutil.which(os.environ.get("JAVA", "java")) is None:
        reason = "no java on PATH"
    if reason:
        if engines.engines_required():
            pytest.fail(f"{reason} (KHAIBAO_REQUIRE_ENGINES=1)")
        pytest.skip(reason)
    return Path(value)


class Outage:
    """Makes the bus unavailable and brings it back."""

    def __init__(self, backend, tmp_path: Path) -> None:  # noqa: ANN001
        self.backend = backend
        self.kafka: LocalKafka | None = None
        self.locker: asyncio.subprocess.Process | None = None
        if backend.name == "kafka":
            self.kafka = LocalKafka(kafka_classpath(), tmp_path / "kafka")

    async def start_bus(self) -> str:
        if self.kafka is None:
            return self.backend.bus_url
        await asyncio.to_thread(self.kafka.start, 120)
        return f"kafka://{self.kafka.bootstrap}"

    async def begin(self, bus_url: str, env: dict[str, str]) -> None:
        if self.kafka is not None:
            await asyncio.to_thread(self.kafka.stop)
            return
        path = bus_url.partition("://")[2]
        self.locker = await asyncio.create_subprocess_exec(
            *worker_command("lock-bus", "--path", path, "--seconds", str(OUTAGE_SECONDS)), env=env,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(self.locker.stdout.readline(), 60)
        assert line.strip() == b"locked", (line, await self.locker.stderr.read())

    async def end(self) -> None:
        if self.kafka is not None:
            await asyncio.to_thread(self.kafka.start, 120)
            return
        assert self.locker is not None
        assert await asyncio.wait_for(self.locker.wait(), OUTAGE_SECONDS + 30) == 0

    async def close(self) -> None:
        if self.locker is not None and self.locker.returncode is None:
            self.locker.kill()
            await self.locker.wait()
        if self.kafka is not None:
            await asyncio.to_thread(self.kafka.stop)


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.platform.worker", *args]


async def test_bus_down_for_30_seconds_while_events_are_written(backend, tmp_path, capsys) -> None:
    outage = Outage(backend, tmp_path)
    log = tmp_path / "workers.log"
    producer_url = await backend.database_url("producer")
    consumer_url = await backend.database_url("consumer")
    producer_db = await open_database(producer_url)
    consumer_db = await open_database(consumer_url)
    namespace = backend.bus_options().get("namespace", "")
    workers: list[asyncio.subprocess.Process] = []
    bus = None
    try:
        bus_url = await outage.start_bus()
        producer_env = worker_env(producer_url, bus_url, namespace)
        consumer_env = worker_env(consumer_url, bus_url, namespace)
        deliveries_file = tmp_path / "deliveries.jsonl"

        async def worker(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
            process = await start_worker(*args, env=env, log=log)
            workers.append(process)
            return process

        consumer = await worker("consume", "--deliveries", str(deliveries_file), env=consumer_env)
        producer = await worker("produce", "--until-stopped", "--interval", str(WRITE_INTERVAL),
                                "--prefix", "outage", "--max-backoff", "2", env=producer_env)

        async def flowing() -> bool:
            assert producer.returncode is None and consumer.returncode is None, tail(log)
            return len(await applied_ids(consumer_db)) >= 20

        await eventually(flowing, timeout=90, what="events flowing before the outage")

        await outage.begin(bus_url, producer_env)
        down_since = time.time()
        await asyncio.sleep(2.0)  # what was in flight has landed by now
        applied_early = len(await applied_ids(consumer_db))
        await asyncio.sleep(8.0)
        consumer.kill()  # the consumer process dies during the outage ...
        assert await consumer.wait() == KILLED
        consumer = await worker("consume", "--deliveries", str(deliveries_file), env=consumer_env)  # ... and comes back
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.time() - down_since)))
        applied_late = len(await applied_ids(consumer_db))
        await outage.end()
        back_since = time.time()

        await asyncio.sleep(3.0)  # keep accepting for a while after the bus is back
        producer.send_signal(signal.SIGTERM)  # stop accepting, drain the outbox, exit
        assert await wait_worker(producer, 120, log) == 0, tail(log)
        assert await outbox_count(producer_db) == 0

        accepted = await accepted_ids(producer_db)

        async def caught_up() -> bool:
            assert consumer.returncode is None, tail(log)
            return set(await applied_ids(consumer_db)) >= set(accepted)

        await eventually(caught_up, timeout=120, interval=0.5, what="the consumer to catch up")
        await asyncio.sleep(2.0)  # a late duplicate would be applied now
        assert await stop_worker(consumer) == 0, tail(log)

        during = len(await rows(producer_db, select(items.c.id).where(
            items.c.created_at > down_since, items.c.created_at < back_since)))
        applied = await applied_ids(consumer_db)
        processed = await processed_ids(consumer_db)
        bus = open_bus(bus_url, namespace)
        await bus.start()
        on_bus = event_ids(await read_topic(bus, [TOPIC], expect=len(accepted), timeout=60))
        redelivered = duplicates(d["id"] for d in deliveries(deliveries_file))
        delivered = len(set(applied) & set(accepted))
        lost = len(set(accepted) - set(applied))
        with capsys.disabled():
            print(f"\n  bus down {back_since - down_since:.0f} s on {backend.name}; consumer process "
                  f"restarted during the outage\n"
                  f"  {'accepted':>9} {'(in outage)':>11} {'on bus':>7} {'bus dups':>8} {'redelivered':>11} "
                  f"{'delivered':>9} {'dup applied':>11} {'lost':>5}\n"
                  f"  {len(accepted):>9} {during:>11} {len(on_bus):>7} {duplicates(on_bus):>8} {redelivered:>11} "
                  f"{delivered:>9} {len(applied) - len(set(applied)):>11} {lost:>5}")

        assert applied_late == applied_early, "nothing can be consumed while the bus is down"
        assert during >= 100, f"the producer kept accepting during the outage (only {during})"
        assert lost == 0
        assert delivered == len(accepted)
        assert len(applied) == len(set(applied)), "an event was applied twice"
        assert set(applied) == set(accepted), "an event was applied that was never accepted"
        assert sorted(processed) == sorted(accepted)
        assert set(on_bus) == set(accepted)
    finally:
        for process in workers:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if bus is not None:
            await bus.stop()
        await outage.close()
        await producer_db.dispose()
        await consumer_db.dispose()
