"""The Kafka backend picks each message's partition itself (a faster murmur2): it must be
exactly the partition aiokafka's default partitioner (Kafka's Java client) would pick, so the
events of one key stay in one partition whichever producer sent them."""
from __future__ import annotations

import os
import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from libs.common.bus import OutgoingMessage, create_bus
from libs.common.bus.kafka import partition_for

from tests.platform.support import read_topic


def test_partition_is_the_default_partitioners():
    rng = random.Random(2021)
    default = DefaultPartitioner()
    keys = [os.urandom(rng.randrange(0, 90)) for _ in range(5000)]
    keys += [b"", b"a", b"ab", b"abc", b"79/787/27664", b"3f1c2e4a-8b9d-4c6e-a1f2-0123456789ab"]
    for partitions in ([0], [0, 1, 2], [0, 1, 2, 3, 4, 5], list(range(50))):
        for key in keys:
            assert partition_for(key, partitions) == default(key, partitions, partitions), (key, partitions)


async def test_a_publish_lands_each_message_in_its_keys_partition_in_order(backend):
    """The Kafka backend appends each partition's messages to one record batch: every message
    arrives once, in the partition the Java client would pick for its key, in the order sent,
    with its headers."""
    if backend.name != "kafka":
        pytest.skip("the Kafka producer's batching (the embedded bus has no partitions)")
    bus = create_bus(backend.bus_url, partitions=6, **backend.bus_options())
    await bus.start()
    topic = "khaibao.declaration"
    try:
        await bus.ensure_topics([topic])
        keys = [f"3f1c2e4a-8b9d-4c6e-a1f2-{n:012d}".encode() for n in range(40)]
        sent = [OutgoingMessage(topic=topic, key=keys[n % len(keys)], value=f'{{"n": {n}}}'.encode(),
                                headers=(("type", b"test.sent"), ("n", str(n).encode())))
                for n in range(600)]
        await bus.publish(sent[:450])
        await bus.publish(sent[450:])
        received = await read_topic(bus, [topic], expect=600, settle=0.5)
    finally:
        await bus.stop()
    assert sorted(int(m.header("n")) for m in received) == list(range(600)), "each message once"
    partitions = list(range(6))
    by_key: dict[bytes, list[int]] = {}
    for message in received:
        assert message.partition == partition_for(message.key, partitions), message.key
        assert message.header("type") == "test.sent"
        by_key.setdefault(message.key, []).append(int(message.header("n")))
    assert all(ns == sorted(ns) for ns in by_key.values()), "each key's messages in the order sent"
