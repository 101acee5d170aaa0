"""Transactional outbox and idempotent consumer (ARCHITECTURE rules 2 and 4), on both backends.

No dual writes: an event leaves only if its transaction commits. The relay publishes and
then deletes. The consumer applies each event once however often it is delivered, skips
types it does not handle, sends what it cannot read or cannot apply to the dead-letter
topic without blocking the rest, and upcasts old versions.
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from libs.common import outbox
from libs.common.bus import OutgoingMessage
from libs.common.db import Database
from libs.common.events import DEAD_LETTER_TOPIC, Event, parse_event

from .support import (
    GROUP, LABELLED, RECORDED, TOPIC, ItemLabelled, accept_item, applied_ids, apply_effect, duplicates,
    effects, event_ids, eventually, items, labelled, make_consumer, message_of, open_bus, open_database,
    outbox_count, processed_ids, raw_envelope, read_topic, recorded, rows, running, scalar,
)


@pytest.fixture
async def platform(backend):
    """The producer's database, the consumer's database (each service owns its own) and the bus."""
    producer_db = await open_database(await backend.database_url("producer"))
    consumer_db = await open_database(await backend.database_url("consumer"))
    bus = open_bus(backend.bus_url, **backend.bus_options())
    await bus.start()
    await bus.ensure_topics([TOPIC, DEAD_LETTER_TOPIC])
    try:
        yield SimpleNamespace(db=producer_db, consumer_db=consumer_db, bus=bus, backend=backend)
    finally:
        await bus.stop()
        await producer_db.dispose()
        await consumer_db.dispose()


def relay_for(p, **options) -> outbox.OutboxRelay:  # noqa: ANN001
    return outbox.OutboxRelay(p.db, p.bus, "platform-test", **options)


async def test_rolled_back_publish_leaves_nothing(platform) -> None:
    p = platform
    lost = recorded("rolled-back", 1)
    with pytest.raises(RuntimeError, match="use case failed"):
        async with p.db.transaction() as session:
            await session.execute(items.insert().values(item_id="rolled-back", value=1, event_id=str(lost.id),
                                                        created_at=0.0))
            await outbox.publish(session, lost)
            raise RuntimeError("use case failed")
    assert await outbox_count(p.db) == 0
    assert await scalar(p.db, select(func.count()).select_from(items)) == 0
    relay = relay_for(p)
    assert await relay.relay_once() == 0

    # A committed event afterwards is the only thing that ever reaches the bus.
    kept = await accept_item(p.db, "kept", 2)
    assert await relay.relay_once() == 1
    messages = await read_topic(p.bus, [TOPIC], expect=1, settle=1.5)
    assert event_ids(messages) == [str(kept.id)]


async def test_committed_publish_is_relayed_then_deleted(platform) -> None:
    p = platform
    event = await accept_item(p.db, "venue-42", 7)
    (row,) = await rows(p.db, select(outbox.outbox))
    assert (row.event_id, row.event_type, row.topic, row.key) == (str(event.id), RECORDED, TOPIC, "venue-42")
    assert row.lease_owner is None

    relay = relay_for(p)
    assert await relay.relay_once() == 1
    assert await outbox_count(p.db) == 0
    assert await relay.relay_once() == 0

    (message,) = await read_topic(p.bus, [TOPIC], expect=1)
    assert message.key == b"venue-42"
    assert message.header("type") == RECORDED
    assert message.header("trace_id") == event.trace_id
    assert parse_event(message.value) == event


async def test_same_message_delivered_twice_is_applied_once(platform) -> None:
    p = platform
    twice = recorded("dup", 1)
    barrier = recorded("dup", 2)  # same key: same partition, so it is read after the copies
    consumer = make_consumer(p.consumer_db, p.bus)
    async with running(consumers=[consumer]) as runner:
        # Two copies in one poll (the batch path), then one more copy on its own.
        await p.bus.publish([message_of(twice), message_of(twice), message_of(barrier)])
        await eventually(lambda: has_applied(p.consumer_db, barrier), what="the first barrier", runner=runner)
        await p.bus.publish([message_of(twice)])
        await asyncio.sleep(1.0)
        last = recorded("dup", 3)
        await p.bus.publish([message_of(last)])
        await eventually(lambda: has_applied(p.consumer_db, last), what="the last barrier", runner=runner)

    applied = await applied_ids(p.consumer_db)
    assert Counter(applied) == {str(twice.id): 1, str(barrier.id): 1, str(last.id): 1}
    assert sorted(await processed_ids(p.consumer_db)) == sorted([str(twice.id), str(barrier.id), str(last.id)])
    assert len(event_ids(await read_topic(p.bus, [TOPIC], expect=5))) == 5  # the bus did deliver the copies


async def has_applied(database: Database, event: Event) -> bool:
    return str(event.id) in await applied_ids(database)


def raw(value: bytes, key: bytes = b"poison", event_type: str | None = None) -> OutgoingMessage:
    headers = (("type", event_type.encode()),) if event_type else ()
    return OutgoingMessage(topic=TOPIC, key=key, value=value, headers=headers)


async def test_unreadable_and_unknown_events_are_dead_lettered_without_blocking(platform) -> None:
    p = platform
    first, last = recorded("poison", 1), recorded("poison", 2)
    not_handled = labelled("poison", "known, but this consumer does not handle it")
    bad_data = raw_envelope(RECORDED, {"item_id": "poison", "value": "many"})
    extra_field = raw_envelope(RECORDED, {"item_id": "poison", "value": 3, "surprise": True})
    no_producer = raw_envelope(RECORDED, {"item_id": "poison", "value": 4})
    del no_producer["producer"]
    poison = [  # (message, the error the dead letter must name)
        (raw(b"\xff\xfe this is not JSON"), "MalformedEvent"),
        (raw(b"[1, 2, 3]"), "MalformedEvent"),
        (raw(json.dumps(no_producer).encode(), event_type=RECORDED), "MalformedEvent"),
        (raw(json.dumps(bad_data).encode(), event_type=RECORDED), "MalformedEvent"),
        (raw(json.dumps(extra_field).encode(), event_type=RECORDED), "MalformedEvent"),
        (raw(json.dumps(raw_envelope("platformtest.item.vanished", {"item_id": "poison"})).encode()),
         "UnknownEvent"),
        (raw(json.dumps(raw_envelope(RECORDED, {"item_id": "poison", "value": 5}, version=7)).encode()),
         "UnknownEvent"),
    ]
    await p.bus.publish([message_of(first), *[m for m, _ in poison], message_of(not_handled), message_of(last)])

    consumer = make_consumer(p.consumer_db, p.bus)  # handles RECORDED only
    async with running(consumers=[consumer]) as runner:
        await eventually(lambda: has_applied(p.consumer_db, last), what="the event after the poison", runner=runner)
        dead = await read_topic(p.bus, [DEAD_LETTER_TOPIC], expect=len(poison))

    assert Counter(await applied_ids(p.consumer_db)) == {str(first.id): 1, str(last.id): 1}
    assert sorted(await processed_ids(p.consumer_db)) == sorted([str(first.id), str(last.id)])

    assert len(dead) == len(poison), [m.value for m in dead]
    dead.sort(key=lambda m: int(m.header("original_offset")))
    for (sent, error), letter in zip(poison, dead, strict=True):
        assert letter.value == sent.value
        assert letter.key == sent.key
        assert letter.header("original_topic") == TOPIC
        assert letter.header("consumer") == GROUP
        assert letter.header("type") == (sent.headers[0][1].decode() if sent.headers else "unknown")
        reason = json.loads(letter.header("error"))
        assert reason["error"] == error, reason
        assert reason["detail"]
    # The unhandled type was skipped: not applied, not recorded, not dead-lettered.
    assert str(not_handled.id) not in await processed_ids(p.consumer_db)


@pytest.mark.parametrize("batch_size", [1, 200], ids=["one-by-one", "batched"])
async def test_failing_handler_is_retried_then_dead_lettered(platform, batch_size: int) -> None:
    p = platform
    attempts: Counter[str] = Counter()

    async def handler(session, event: Event) -> None:  # noqa: ANN001
        attempts[str(event.id)] += 1
        if event.data.value < 0:
            raise RuntimeError(f"cannot record a negative value {event.data.value}")
        await apply_effect(session, event)

    before = [recorded("retry", n) for n in range(3)]
    bad = recorded("retry", -1)
    after = [recorded("retry", n) for n in range(10, 15)]
    await p.bus.publish([message_of(e) for e in (*before, bad, *after)])

    max_attempts = 3
    consumer = make_consumer(p.consumer_db, p.bus, {RECORDED: handler}, max_attempts=max_attempts,
                             backoff=0.02, batch_size=batch_size)
    async with running(consumers=[consumer]) as runner:
        await eventually(lambda: has_applied(p.consumer_db, after[-1]), what="the events after the failing one",
                         runner=runner)
        dead = await read_topic(p.bus, [DEAD_LETTER_TOPIC], expect=1)

    good = [str(e.id) for e in (*before, *after)]
    assert Counter(await applied_ids(p.consumer_db)) == {i: 1 for i in good}
    assert sorted(await processed_ids(p.consumer_db)) == sorted(good)  # the failed one left no trace
    if batch_size == 1:
        assert attempts[str(bad.id)] == max_attempts
    else:  # one try inside the failed batch, then max_attempts on its own
        assert attempts[str(bad.id)] == max_attempts + 1
    assert len(dead) == 1
    assert dead[0].value == message_of(bad).value
    assert dead[0].header("type") == RECORDED
    reason = json.loads(dead[0].header("error"))
    assert reason == {"error": "RuntimeError", "detail": "cannot record a negative value -1"}


async def test_upcaster_brings_a_v1_payload_to_the_current_version(platform) -> None:
    p = platform
    seen: list[Event] = []

    async def handler(session, event: Event) -> None:  # noqa: ANN001
        seen.append(event)
        await apply_effect(session, event)

    v1 = raw_envelope(LABELLED, {"item_id": "market-1", "name": "Chợ Bến Thành"}, version=1)
    current = labelled("market-2", "Chợ Bình Tây")
    assert current.version == ItemLabelled.current_version == 2
    async with p.db.transaction() as session:
        await outbox.publish(session, current)
    await p.bus.publish([raw(json.dumps(v1).encode(), key=b"market", event_type=LABELLED)])

    consumer = make_consumer(p.consumer_db, p.bus, {LABELLED: handler})
    async with running(relays=[relay_for(p)], consumers=[consumer]) as runner:
        await eventually(lambda: count_applied(p.consumer_db, 2), what="both labelled events", runner=runner)

    by_item = {e.data.item_id: e for e in seen}
    assert set(by_item) == {"market-1", "market-2"}
    old = by_item["market-1"]
    assert isinstance(old, ItemLabelled)
    assert (str(old.id), old.version, old.data.label, old.data.origin) == (v1["id"], 2, "Chợ Bến Thành", "v1")
    assert by_item["market-2"] == current
    stored = await rows(p.consumer_db, select(effects.c.item_id, effects.c.version, effects.c.label)
                        .order_by(effects.c.item_id))
    assert [tuple(r) for r in stored] == [("market-1", 2, "Chợ Bến Thành"), ("market-2", 2, "Chợ Bình Tây")]


async def count_applied(database: Database, n: int) -> bool:
    return len(await applied_ids(database)) >= n


async def test_two_relays_share_one_outbox_without_losing_an_event(platform) -> None:
    """Two relays on one database (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: serialized)
    while three writers keep adding events."""
    p = platform
    writers, per_writer = 3, 100
    total = writers * per_writer
    second_db = Database(p.db.url)  # the second relay has its own engine, like another process
    services = ["relay-a-" + p.backend.namespace, "relay-b-" + p.backend.namespace]
    relays = [outbox.OutboxRelay(db, p.bus, name, batch_size=25, poll_interval=0.05)
              for db, name in zip((p.db, second_db), services, strict=True)]
    written: list[str] = []

    async def writer(w: int) -> None:
        n = 0
        while n < per_writer:
            size = min(1 + (n + w) % 5, per_writer - n)  # transactions of 1 to 5 events
            async with p.db.transaction() as session:
                for k in range(n, n + size):
                    event = recorded(f"w{w}-item-{k % 7}", k)
                    await session.execute(items.insert().values(item_id=event.data.item_id, value=k,
                                                                event_id=str(event.id), created_at=0.0))
                    await outbox.publish(session, event)
                    written.append(str(event.id))
            n += size
            await asyncio.sleep(0.005)

    consumer = make_consumer(p.consumer_db, p.bus)
    try:
        async with running(relays=relays, consumers=[consumer]) as runner:
            await asyncio.gather(*(writer(w) for w in range(writers)))
            await eventually(lambda: outbox_empty(p.db), timeout=60, what="an empty outbox", runner=runner)
            await eventually(lambda: count_applied(p.consumer_db, total), timeout=60,
                             what=f"{total} applied events", runner=runner)
            await asyncio.sleep(1.0)  # anything extra would show up now
    finally:
        await second_db.dispose()

    published = [REGISTRY.get_sample_value("khaibao_events_published_total", {"service": s, "type": RECORDED}) or 0
                 for s in services]
    on_bus = event_ids(await read_topic(p.bus, [TOPIC], expect=total, timeout=30))
    applied = await applied_ids(p.consumer_db)
    print(f"\nrelays published {published[0]:.0f} + {published[1]:.0f}; on the bus {len(on_bus)} "
          f"({duplicates(on_bus)} duplicates); applied {len(applied)}")
    assert len(written) == total
    assert sum(published) == total, published
    assert sorted(set(on_bus)) == sorted(written), "an event was lost or one appeared from nowhere"
    assert duplicates(on_bus) == 0
    assert Counter(applied) == {i: 1 for i in written}
    assert len(await processed_ids(p.consumer_db)) == total


async def outbox_empty(database: Database) -> bool:
    return await outbox_count(database) == 0
