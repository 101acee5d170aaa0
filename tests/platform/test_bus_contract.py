"""The bus contract, the same on the embedded bus and on Kafka (ARCHITECTURE rule 3).

Publish is durable; a consumer group reads in order per key; groups are independent; a
group's committed position survives its consumers (committed messages are not delivered
again, uncommitted ones are); lag reports the backlog; headers travel unchanged.
"""
from __future__ import annotations

import time
from collections import defaultdict

import pytest

from libs.common.bus import Bus, Consumer, Message, OutgoingMessage

from .support import open_bus

TOPIC = "khaibao.platformtest-bus"
OTHER_TOPIC = "khaibao.platformtest-bus-other"


@pytest.fixture
async def bus(backend):
    bus = open_bus(backend.bus_url, **backend.bus_options())
    await bus.start()
    await bus.ensure_topics([TOPIC, OTHER_TOPIC])
    try:
        yield bus
    finally:
        await bus.stop()


def outgoing(key: str, n: int, topic: str = TOPIC, headers=()) -> OutgoingMessage:  # noqa: ANN001
    return OutgoingMessage(topic=topic, key=key.encode(), value=f"{key}:{n}".encode(), headers=tuple(headers))


async def receive(consumer: Consumer, count: int, timeout: float = 20, max_records: int = 500) -> list[Message]:
    """Exactly the next ``count`` messages (fails on fewer; never asks for more)."""
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        assert time.monotonic() < deadline, f"received {len(messages)} of {count} messages within {timeout} s"
        messages += await consumer.poll(max_records=min(max_records, count - len(messages)), timeout=0.3)
    assert len(messages) == count, f"asked for {count}, got {len(messages)}"
    return messages


async def nothing_more(consumer: Consumer, seconds: float = 1.5) -> list[Message]:
    extra: list[Message] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        extra += await consumer.poll(timeout=0.2)
    return extra


def per_key(messages: list[Message]) -> dict[bytes, list[bytes]]:
    result: dict[bytes, list[bytes]] = defaultdict(list)
    for m in messages:
        result[m.key].append(m.value)
    return dict(result)


async def started(bus: Bus, group: str, topics=(TOPIC,)) -> Consumer:  # noqa: ANN001
    consumer = bus.consumer(group, list(topics))
    await consumer.start()
    return consumer


async def test_groups_read_in_order_per_key_and_independently(bus: Bus) -> None:
    keys = ["unit-a", "unit-b", "unit-c", "unit-d"]
    # Interleaved keys, published in several calls.
    for start in range(0, 40, 10):
        await bus.publish([outgoing(keys[n % 4], n) for n in range(start, start + 10)])
    await bus.publish([outgoing("unit-z", 0, topic=OTHER_TOPIC)])
    expected = {k.encode(): [f"{k}:{n}".encode() for n in range(40) if keys[n % 4] == k] for k in keys}

    first = await started(bus, "group-one")
    second = await started(bus, "group-two")
    try:
        one = await receive(first, 40)
        assert per_key(one) == expected
        assert {m.topic for m in one} == {TOPIC}
        # Offsets grow within a partition.
        by_partition = defaultdict(list)
        for m in one:
            by_partition[m.partition].append(m.offset)
        assert all(offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
                   for offsets in by_partition.values())
        for m in one[:5]:
            await first.commit(m)
        assert await nothing_more(first) == []

        # The second group is not affected by the first one's reads and commits.
        two = await receive(second, 40)
        assert per_key(two) == expected
        assert await nothing_more(second) == []
    finally:
        await first.stop()
        await second.stop()


async def test_committed_position_survives_a_new_consumer(bus: Bus) -> None:
    # One key: one partition on Kafka, so "the first six" is well defined on both buses.
    await bus.publish([outgoing("venue-1", n) for n in range(10)])

    consumer = await started(bus, "group-restart")
    try:
        first = await receive(consumer, 10)
        assert [m.value for m in first] == [f"venue-1:{n}".encode() for n in range(10)]
        await consumer.commit(first[5])  # handled 0..5; 6..9 were received but not handled
    finally:
        await consumer.stop()

    consumer = await started(bus, "group-restart")
    try:
        again = await receive(consumer, 4)
        assert [m.value for m in again] == [f"venue-1:{n}".encode() for n in range(6, 10)]
        assert [m.offset for m in again] == [m.offset for m in first[6:]]
        assert await nothing_more(consumer) == []
        await consumer.commit(again[-1])
        await bus.publish([outgoing("venue-1", 10)])
        after = await receive(consumer, 1)
        assert after[0].value == b"venue-1:10"
        await consumer.commit(after[0])
    finally:
        await consumer.stop()

    consumer = await started(bus, "group-restart")
    try:
        assert await nothing_more(consumer) == [], "committed messages must not be delivered again"
    finally:
        await consumer.stop()


async def test_lag_reports_the_backlog(bus: Bus) -> None:
    await bus.publish([outgoing("commune-7", n) for n in range(10)])
    consumer = await started(bus, "group-lag")
    try:
        messages = await receive(consumer, 4)
        await consumer.commit(messages[-1])
        assert await consumer.lag() == {TOPIC: 6}
        rest = await receive(consumer, 6)
        await consumer.commit(rest[-1])
        assert await consumer.lag() == {TOPIC: 0}
    finally:
        await consumer.stop()

    # A new member of the group sees the same backlog once more messages arrive.
    await bus.publish([outgoing("commune-7", n) for n in range(10, 13)])
    consumer = await started(bus, "group-lag")
    try:
        messages = await receive(consumer, 1)
        assert messages[0].value == b"commune-7:10"
        await consumer.commit(messages[0])
        assert await consumer.lag() == {TOPIC: 2}
    finally:
        await consumer.stop()


async def test_headers_round_trip(bus: Bus) -> None:
    headers = (
        ("type", b"platformtest.item.recorded"),
        ("trace_id", b"4bf92f3577b34da6a3ce929d0e0e4736"),
        ("note", "Khai báo y tế: Thành phố Hồ Chí Minh".encode()),
        ("empty", b""),
        ("binary", bytes([0, 1, 127, 128, 200, 255])),
        ("note", b"a repeated name keeps both values, in order"),
    )
    await bus.publish([OutgoingMessage(topic=TOPIC, key=b"h", value=b"with headers", headers=headers),
                       OutgoingMessage(topic=TOPIC, key=b"h", value=b"without headers")])
    consumer = await started(bus, "group-headers")
    try:
        with_headers, without = await receive(consumer, 2)
    finally:
        await consumer.stop()
    assert with_headers.value == b"with headers"
    assert with_headers.key == b"h"
    assert tuple(with_headers.headers) == headers
    assert with_headers.header("note") == "Khai báo y tế: Thành phố Hồ Chí Minh"
    assert with_headers.header("missing") is None
    assert tuple(without.headers) == ()
