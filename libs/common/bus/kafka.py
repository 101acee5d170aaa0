"""Apache Kafka backend (aiokafka).

The producer is idempotent with acks=all, so a publish returns only when every in-sync
replica has the messages, and broker-side retries never duplicate. Consumers join a
consumer group (so a service scales by adding processes), never auto-commit, and commit
a partition's offset only after the handler's transaction has committed.

Topics keep their messages ``retention_ms`` (KHAIBAO_DATA_RETENTION_DAYS, bus/retention.py):
a topic is created with that ``retention.ms``, and a topic that already exists gets it the
first time a process uses it (so a changed setting applies at the next start). khaibao owns
its topics' configuration: that update replaces any other per-topic setting.

Several brokers (docker-compose.ha.yml): topics are created with ``replication_factor``
replicas and ``min.insync.replicas`` = ``min_insync_replicas`` (KHAIBAO_KAFKA_REPLICATION_FACTOR,
KHAIBAO_KAFKA_MIN_INSYNC_REPLICAS). The clients ride through a leader change: a request to a
dead or frozen leader fails after ``request_timeout_ms`` (15 s, producer and consumers alike),
the client then refreshes its metadata (every error does; ``metadata_max_age_ms`` bounds how
stale it gets otherwise) and retries against the new leader every ``retry_backoff_ms``; the
outbox relay publishes what failed again (0.1 s doubling to 5 s). The client's retry window
after a broker is lost is thus the request timeout plus the controller's election (the
broker's session timeout, 9 s by default) plus one relay backoff: under 30 s
(README "Kafka with three brokers" measures it).
"""
from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Sequence
from functools import lru_cache

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from .base import Bus, BusUnavailable, Consumer, Message, OutgoingMessage

log = logging.getLogger(__name__)

_M = 0x5BD1E995


@lru_cache(maxsize=64)
def _words(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's key partitioner), exactly as aiokafka's, at about
    half its cost: the relay hashes every event's key (tests/declaration/test_kafka_partitioner.py
    checks both agree)."""
    length = len(data)
    h = 0x9747B28C ^ length
    count = length >> 2
    for k in _words(count).unpack_from(data):
        k = (k * _M) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * _M) & 0xFFFFFFFF
        h = ((h * _M) & 0xFFFFFFFF) ^ k
    tail = length & 3
    if tail:
        base = count << 2
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition aiokafka's DefaultPartitioner gives ``key`` (``partitions`` sorted)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


class KafkaBus(Bus):
    OPTIONS = frozenset({"partitions", "replication_factor", "min_insync_replicas", "request_timeout_ms",
                         "client_id", "namespace", "retention_ms"})
    # How old the clients' view of leaders may get without an error asking for a new one.
    METADATA_MAX_AGE_MS = 60000
    RETRY_BACKOFF_MS = 250

    def __init__(self, bootstrap: str, *, partitions: int = 6, replication_factor: int = 1,
                 min_insync_replicas: int | None = None, request_timeout_ms: int = 15000,
                 client_id: str = "khaibao", namespace: str = "", retention_ms: int | None = None) -> None:
        if min_insync_replicas is not None and min_insync_replicas > replication_factor:
            raise ValueError(f"min_insync_replicas={min_insync_replicas} exceeds replication_factor="
                             f"{replication_factor}: every write would be refused")
        self.bootstrap = bootstrap
        self.min_insync_replicas = min_insync_replicas
        # Each topic's retention.ms (None: the broker's default, for tools that only read).
        self.retention_ms = retention_ms
        # Prepended to every topic and group: several systems (or test runs) share one cluster.
        self.namespace = namespace
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.request_timeout_ms = request_timeout_ms
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._known_topics: set[str] = set()

    async def start(self) -> None:
        try:
            await self._get_producer()
        except BusUnavailable as exc:
            # The service still starts: the outbox keeps everything until Kafka answers.
            log.warning("Kafka is not reachable yet: %s", exc)

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def _get_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=self.client_id,
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=2,
                    request_timeout_ms=self.request_timeout_ms,
                    retry_backoff_ms=self.RETRY_BACKOFF_MS,
                    metadata_max_age_ms=self.METADATA_MAX_AGE_MS,
                    max_batch_size=256 * 1024,
                )
                try:
                    await producer.start()
                except KafkaError as exc:
                    await producer.stop()
                    raise BusUnavailable(f"kafka: {exc!r}") from None
                self._producer = producer
            return self._producer

    async def _reset_producer(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except KafkaError:
                pass

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        missing = [self.namespace + t for t in topics if self.namespace + t not in self._known_topics]
        if not missing:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=self.request_timeout_ms)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            configs = self.topic_configs() or None
            new = [NewTopic(name=t, num_partitions=self.partitions, replication_factor=self.replication_factor,
                            topic_configs=configs)
                   for t in missing if t not in existing]
            created = set()
            if new:
                try:
                    await admin.create_topics(new)
                    created = {t.name for t in new}
                except TopicAlreadyExistsError:
                    pass
            if configs:
                older = [ConfigResource(ConfigResourceType.TOPIC, t, configs=configs)
                         for t in missing if t not in created]
                if older:
                    await admin.alter_configs(older)
            self._known_topics.update(missing)
        except KafkaError as exc:
            raise BusUnavailable(f"kafka: {exc!r}") from None
        finally:
            await admin.close()

    def topic_configs(self) -> dict[str, str]:
        """The per-topic settings khaibao sets on its topics (created or altered)."""
        configs = {}
        if self.retention_ms:
            configs["retention.ms"] = str(self.retention_ms)
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        return configs

    async def replication(self) -> tuple[dict[str, tuple[int, int]], int]:
        """From the producer's view of the cluster (metadata fetched now): per khaibao topic,
        (partitions whose in-sync replicas are fewer than their replicas, partitions with no
        leader); and the number of live brokers. The services export them as gauges
        (libs/common/bus/health.py): Kafka's own JMX figures need an exporter Debian does
        not ship."""
        producer = await self._get_producer()
        try:
            cluster = await asyncio.wait_for(producer.client.fetch_all_metadata(),
                                             timeout=self.request_timeout_ms / 1000)
        except (KafkaError, asyncio.TimeoutError) as exc:
            raise BusUnavailable(f"kafka: {exc!r}") from None
        found = {}
        for topic in cluster.topics():
            if not topic.startswith(self.namespace + "khaibao."):
                continue
            partitions = cluster._partitions.get(topic, {}).values()  # noqa: SLF001 - no public reader of ISR
            found[topic[len(self.namespace):]] = (sum(len(p.isr) < len(p.replicas) for p in partitions),
                                                  sum(p.leader == -1 for p in partitions))
        return found, len(cluster.brokers())

    async def ping(self) -> None:
        producer = await self._get_producer()
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=5)
        except (KafkaError, asyncio.TimeoutError) as exc:
            raise BusUnavailable(f"kafka: {exc!r}") from None

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        await self.ensure_topics(sorted({m.topic for m in messages}))
        producer = await self._get_producer()
        # Grouped by partition and appended to record batches directly: one future per
        # batch instead of per message, and none of send()'s per-message checks (about a
        # third of the producer's CPU per message). The partitions are the ones send()
        # would pick (the Java client's murmur2 of the key); still idempotent, acks=all.
        groups: dict[tuple[str, int], list[OutgoingMessage]] = {}
        futures: list[asyncio.Future] = []
        try:
            for topic in {m.topic for m in messages}:
                await producer.client._wait_on_metadata(self.namespace + topic)
            known: dict[str, list[int]] = {}
            for m in messages:
                topic = self.namespace + m.topic
                partitions = known.get(topic)
                if partitions is None:
                    partitions = known[topic] = sorted(producer.client.cluster.partitions_for_topic(topic) or ())
                if not partitions:
                    raise BusUnavailable(f"kafka: no partitions known for {topic}")
                partition = (partition_for(m.key, partitions) if m.key is not None
                             else partitions[len(futures) % len(partitions)])
                groups.setdefault((topic, partition), []).append(m)
            for (topic, partition), group in groups.items():
                batch = producer.create_batch()
                for m in group:
                    if batch.append(key=m.key, value=m.value, timestamp=None, headers=list(m.headers)) is None:
                        if not batch.record_count():  # one message larger than a whole batch
                            raise BusUnavailable(f"kafka: a message of {len(m.value)} bytes is too large")
                        futures.append(await producer.send_batch(batch, topic, partition=partition))
                        batch = producer.create_batch()
                        if batch.append(key=m.key, value=m.value, timestamp=None, headers=list(m.headers)) is None:
                            raise BusUnavailable(f"kafka: a message of {len(m.value)} bytes is too large")
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            for future in futures:
                await future
        except KafkaError as exc:
            for future in futures:  # retrieved, so that none is logged as never retrieved
                if future.done() and not future.cancelled():
                    future.exception()
            # Some may have been stored: the outbox publishes again and consumers dedupe.
            await self._reset_producer()
            raise BusUnavailable(f"kafka: {exc!r}") from None

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return KafkaConsumer(self, group, topics)


class _Assigned(ConsumerRebalanceListener):
    def __init__(self, consumer: "KafkaConsumer") -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked) -> None:  # noqa: ANN001
        return None

    async def on_partitions_assigned(self, assigned) -> None:  # noqa: ANN001
        await self.consumer._check_deleted_unread(list(assigned))


class KafkaConsumer(Consumer):
    def __init__(self, bus: KafkaBus, group: str, topics: Sequence[str]) -> None:
        self.bus = bus
        self.group = group
        self.topics = tuple(topics)
        self._consumer: AIOKafkaConsumer | None = None
        self._prefix = len(bus.namespace)
        self._reported_start: dict[TopicPartition, int] = {}  # first offsets already compared
        self._caught_up_at: dict[str, float] = {}  # topic -> last time this group had read it all

    async def start(self) -> None:
        await self.bus.ensure_topics(self.topics)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bus.bootstrap,
            group_id=self.bus.namespace + self.group,
            client_id=f"{self.bus.client_id}-{self.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_uncommitted",
            # Not aiokafka's 40 s: a fetch stuck on a frozen leader is given up as soon as
            # the producer's would be (above the session timeout, for JoinGroup's sake).
            request_timeout_ms=max(self.bus.request_timeout_ms, 15000),
            session_timeout_ms=10000,
            retry_backoff_ms=self.bus.RETRY_BACKOFF_MS,
            metadata_max_age_ms=self.bus.METADATA_MAX_AGE_MS,
            heartbeat_interval_ms=3000,
        )
        # Checked before the first fetch of each partition assigned: a group back after
        # the broker deleted what it had not read would otherwise restart at the earliest
        # offset without a word.
        consumer.subscribe(topics=[self.bus.namespace + t for t in self.topics], listener=_Assigned(self))
        self._consumer = consumer
        try:
            await consumer.start()
        except KafkaError as exc:
            self._consumer = None
            await consumer.stop()
            raise BusUnavailable(f"kafka: {exc!r}") from None

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _check_deleted_unread(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        """The broker deletes by time, read or not: a committed offset below a partition's
        first offset means messages this group never consumed are gone. Reported once per
        partition and first offset (bus/retention.py), never silently."""
        if self._consumer is None:
            return
        assignment = list(self._consumer.assignment() if partitions is None else partitions)
        if not assignment:
            return
        try:
            first = await self._consumer.beginning_offsets(assignment)
            for tp in assignment:
                start = first.get(tp)
                if not start or self._reported_start.get(tp) == start:
                    continue
                committed = await self._consumer.committed(tp)
                if committed is not None and committed < start:
                    from .retention import report_deleted_unread

                    report_deleted_unread(self.bus.client_id.removeprefix("khaibao-"), self.group,
                                          tp.topic[self._prefix:], start - committed,
                                          f"retention.ms={self.bus.retention_ms}")
                self._reported_start[tp] = start
        except KafkaError:
            log.debug("could not compare committed offsets with the first offsets", exc_info=True)

    async def poll(self, max_records: int = 100, timeout: float = 0.5) -> list[Message]:
        assert self._consumer is not None, "start() first"
        try:
            batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        except KafkaError as exc:
            raise BusUnavailable(f"kafka: {exc!r}") from None
        return [
            Message(topic=r.topic[self._prefix:], partition=r.partition, offset=r.offset, value=r.value, key=r.key,
                    headers=tuple(r.headers or ()))
            for records in batches.values()
            for r in records
        ]

    async def commit_all(self, messages: Sequence[Message]) -> None:
        """All partitions' offsets in one OffsetCommit request."""
        assert self._consumer is not None, "start() first"
        offsets = {TopicPartition(self.bus.namespace + m.topic, m.partition): m.offset + 1 for m in messages}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            raise BusUnavailable(f"kafka commit: {exc!r}") from None

    async def commit(self, message: Message) -> None:
        assert self._consumer is not None, "start() first"
        try:
            await self._consumer.commit({TopicPartition(self.bus.namespace + message.topic, message.partition): message.offset + 1})
        except KafkaError as exc:
            # A rebalance moved the partition: its new owner redelivers from the last commit.
            raise BusUnavailable(f"kafka commit: {exc!r}") from None

    async def lag(self) -> dict[str, int]:
        if self._consumer is None:
            return {}
        await self._check_deleted_unread()
        result: dict[str, int] = {t: 0 for t in self.topics}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            position = await self._consumer.position(tp)
            topic = tp.topic[self._prefix:]
            result[topic] = result.get(topic, 0) + max(0, highwater - position)
        self._report_oldest_unconsumed(result)
        return result

    def _report_oldest_unconsumed(self, lag: dict[str, int]) -> None:
        """khaibao_bus_oldest_unconsumed_age_seconds on Kafka (bus/retention.py): 0 while the
        group has read everything; else the time since it last had, an upper bound of its
        oldest unconsumed message's age (read without fetching that message). The counter of
        messages deleted unread gets its series at 0 too, so that the dashboard shows both."""
        from .retention import LAG_PAST_RETENTION, OLDEST_UNCONSUMED

        service = self.bus.client_id.removeprefix("khaibao-")
        now = time.time()
        for topic, behind in lag.items():
            since = self._caught_up_at.setdefault(topic, now)
            if behind == 0:
                self._caught_up_at[topic] = since = now
            OLDEST_UNCONSUMED.labels(service, self.group, topic).set(now - since)
            LAG_PAST_RETENTION.labels(service, self.group, topic)
