"""Issue 17, item 3: the embedded bus keeps messages no longer than the personal data, and no
consumer group lags past that silently.

A real bus file; messages published, one group up to date, one group that consumed only
the first; the clock moved past KHAIBAO_DATA_RETENTION_DAYS. Pruning proceeds (the storage
limit wins over a stuck consumer): every old message is gone, from the table and from the
file's bytes; the lagging group is reported as an ERROR and counted in
khaibao_bus_consumer_lag_past_retention_total, the group that was up to date is not; the
age of each group's oldest unconsumed message is a metric. Kafka's side (retention.ms per
topic) is asserted in test_retention_everywhere.py. The settings tie each service's
retention to the shared one.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from libs.common.bus import OutgoingMessage, create_bus
from libs.common.bus.retention import prune_bus
from tests.services.conftest import build_settings

TOPIC = "khaibao.retentiontest"
DAY = 86_400.0
SECRET = b"079301004567"


def _lagged(group: str) -> float:
    return REGISTRY.get_sample_value("khaibao_bus_consumer_lag_past_retention_total",
                                     {"service": "test", "group": group, "topic": TOPIC}) or 0


def _age(group: str) -> float | None:
    return REGISTRY.get_sample_value("khaibao_bus_oldest_unconsumed_age_seconds",
                                     {"service": "test", "group": group, "topic": TOPIC})


async def test_old_messages_are_pruned_and_a_lagging_group_is_reported(tmp_path, caplog):
    path = tmp_path / "bus.db"
    bus = create_bus(f"embedded://{path}")
    await bus.start()
    ahead, behind = bus.consumer("ahead", [TOPIC]), bus.consumer("behind", [TOPIC])
    for consumer in (ahead, behind):
        await consumer.start()
    try:
        await bus.publish([OutgoingMessage(TOPIC, b'{"id_number": "' + SECRET + b'", "n": %d}' % i) for i in range(5)])
        got = await ahead.poll(timeout=2)
        assert len(got) == 5
        await ahead.commit(got[-1])
        first = await behind.poll(max_records=1, timeout=2)
        await behind.commit(first[0])
        before = _lagged("behind"), _lagged("ahead")

        # 20 days later: kept; the lagging group's oldest unconsumed message is 20 days old.
        report = await prune_bus(bus, retention_days=21, service="test", now=time.time() + 20 * DAY)
        assert report.deleted == 0
        assert _age("behind") >= 20 * DAY - 60 and _age("ahead") == 0

        # 22 days later: every message goes; the four "behind" never read are reported.
        with caplog.at_level(logging.ERROR, logger="libs.common.bus.retention"):
            report = await prune_bus(bus, retention_days=21, service="test", now=time.time() + 22 * DAY)
        assert report.deleted == 5 and report.unconsumed == {("behind", TOPIC): 4}
        assert (_lagged("behind") - before[0], _lagged("ahead") - before[1]) == (4, 0)
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "behind" in errors[0] and "4 messages" in errors[0]
        assert _age("behind") == 0
        # The consumer that lagged carries on with what comes next.
        await bus.publish([OutgoingMessage(TOPIC, b"after")])
        assert [m.value for m in await behind.poll(timeout=2)] == [b"after"]
    finally:
        for consumer in (ahead, behind):
            await consumer.stop()
        await bus.stop()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM bus_messages WHERE value LIKE ?", (b"%" + SECRET + b"%",)).fetchone() == (0,)
    for file in tmp_path.iterdir():
        assert SECRET not in file.read_bytes(), file.name  # overwritten, not only unlinked


def test_each_service_retention_follows_the_shared_one_and_may_not_exceed_it(keys, monkeypatch):
    for service in ("declaration", "reporting", "notification"):
        assert build_settings(service, keys).retention_days == 21
        assert build_settings(service, keys).bus_retention_ms() == 21 * 86_400_000
    monkeypatch.setenv("KHAIBAO_DATA_RETENTION_DAYS", "14")
    for service in ("declaration", "reporting", "notification"):
        settings = build_settings(service, keys)
        assert (settings.retention_days, settings.bus_retention_ms()) == (14, 14 * 86_400_000)
        with pytest.raises(ValidationError, match="longer than KHAIBAO_DATA_RETENTION_DAYS"):
            build_settings(service, keys, retention_days=15)


async def test_a_one_off_group_that_leaves_is_not_reported(tmp_path):
    """A replay (reporting's rebuild) or a check reads with a group of its own, then leaves."""
    bus = create_bus(f"embedded://{tmp_path / 'bus.db'}")
    await bus.start()
    replay = bus.consumer("reporting-rebuild-test", [TOPIC])
    await replay.start()
    try:
        await bus.publish([OutgoingMessage(TOPIC, b"before")])
        assert len(await replay.poll(timeout=2)) == 1
        await replay.leave()
    finally:
        await replay.stop()
    try:
        await bus.publish([OutgoingMessage(TOPIC, b"after the replay")])
        report = await prune_bus(bus, retention_days=21, service="test", now=time.time() + 22 * DAY)
        assert report.deleted == 2 and report.unconsumed == {}
    finally:
        await bus.stop()


async def test_kafka_a_group_back_after_the_broker_deleted_its_unread_messages_is_reported(caplog):
    """Kafka deletes by time whether a group read or not; the log start offset moves exactly as
    the broker's retention moves it (here by DeleteRecords, instead of waiting 21 days). The
    group that comes back below it is reported before it fetches anything."""
    import uuid

    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.records_to_delete import RecordsToDelete

    from tests import engines

    bootstrap = engines.kafka_bootstrap()
    if bootstrap is None:
        engines.unavailable("Kafka")
    namespace = f"t{uuid.uuid4().hex[:8]}."
    bus = create_bus(f"kafka://{bootstrap}", namespace=namespace, partitions=1, retention_ms=21 * 86_400_000,
                     client_id="khaibao-test")
    await bus.start()
    try:
        await bus.publish([OutgoingMessage(TOPIC, b"message %d" % i, key=b"k") for i in range(5)])
        behind = bus.consumer("behind", [TOPIC])
        await behind.start()
        try:
            first: list = []
            deadline = time.monotonic() + 30
            while not first and time.monotonic() < deadline:
                first = await behind.poll(max_records=1, timeout=1)
            await behind.commit(first[0])  # consumed 1 of 5
        finally:
            await behind.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_records({TopicPartition(namespace + TOPIC, 0): RecordsToDelete(before_offset=5)})
        finally:
            await admin.close()
        before = REGISTRY.get_sample_value("khaibao_bus_consumer_lag_past_retention_total",
                                           {"service": "test", "group": "behind", "topic": TOPIC}) or 0
        back = bus.consumer("behind", [TOPIC])
        with caplog.at_level(logging.ERROR, logger="libs.common.bus.retention"):
            await back.start()
            try:
                await bus.publish([OutgoingMessage(TOPIC, b"after", key=b"k")])
                got: list = []
                deadline = time.monotonic() + 30
                while not got and time.monotonic() < deadline:
                    got = await back.poll(timeout=1)
                assert [m.value for m in got] == [b"after"]
            finally:
                await back.stop()
        after = REGISTRY.get_sample_value("khaibao_bus_consumer_lag_past_retention_total",
                                          {"service": "test", "group": "behind", "topic": TOPIC})
        assert after - before == 4
        assert any("behind" in r.getMessage() and "4 messages" in r.getMessage()
                   for r in caplog.records if r.levelno == logging.ERROR)
    finally:
        await bus.stop()


async def test_kafka_an_existing_topic_gets_the_retention_at_first_use():
    """A topic created before (by a tool, or under another setting) is set to the derived
    retention.ms when a service first uses it: a changed setting applies at the next start."""
    import uuid

    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from tests import engines

    bootstrap = engines.kafka_bootstrap()
    if bootstrap is None:
        engines.unavailable("Kafka")
    namespace = f"t{uuid.uuid4().hex[:8]}."

    async def retention_ms() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, namespace + TOPIC)])
            return next(int(entry[1]) for resource in response.resources for entry in resource[4]
                        if entry[0] == "retention.ms")
        finally:
            await admin.close()

    for days in (None, 21, 14):
        bus = create_bus(f"kafka://{bootstrap}", namespace=namespace, partitions=1,
                         retention_ms=days and days * 86_400_000)
        await bus.start()
        try:
            await bus.ensure_topics([TOPIC])
        finally:
            await bus.stop()
        if days:
            assert await retention_ms() == days * 86_400_000


async def test_pruning_goes_batch_by_batch_and_keeps_what_is_recent(tmp_path):
    bus = create_bus(f"embedded://{tmp_path / 'bus.db'}")
    await bus.start()
    try:
        await bus.publish([OutgoingMessage(TOPIC, b"old %d" % i) for i in range(3)])
        await asyncio.sleep(0.02)
        cutoff = time.time()
        await asyncio.sleep(0.02)
        await bus.publish([OutgoingMessage(TOPIC, b"recent %d" % i) for i in range(2)])
        assert (await bus.prune(cutoff, batch=2)).deleted == 3
        assert (await bus.prune(cutoff, batch=2)).deleted == 0
        reader = bus.consumer("reader", [TOPIC])
        await reader.start()
        try:
            assert [m.value for m in await reader.poll(timeout=2)] == [b"recent 0", b"recent 1"]
        finally:
            await reader.stop()
    finally:
        await bus.stop()
