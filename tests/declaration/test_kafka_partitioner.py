"""The Kafka backend picks each message's partition itself (a faster murmur2): it must be
exactly the partition aiokafka's default partitioner (Kafka's Java client) would pick, so the
events of one key stay in one partition whichever producer sent them."""
from __future__ import annotations

import os
import random

from aiokafka.partitioner import DefaultPartitioner

from libs.common.bus.kafka import partition_for


def test_partition_is_the_default_partitioners():
    rng = random.Random(2021)
    default = DefaultPartitioner()
    keys = [os.urandom(rng.randrange(0, 90)) for _ in range(5000)]
    keys += [b"", b"a", b"ab", b"abc", b"79/787/27664", b"3f1c2e4a-8b9d-4c6e-a1f2-0123456789ab"]
    for partitions in ([0], [0, 1, 2], [0, 1, 2, 3, 4, 5], list(range(50))):
        for key in keys:
            assert partition_for(key, partitions) == default(key, partitions, partitions), (key, partitions)
