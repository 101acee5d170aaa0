"""The settings khaibao puts on its Kafka topics (issue 19): replicas, min.insync.replicas
and retention.ms, on the topic itself, whether the services create it or find it there.

Against the shared broker (one node: replication factor 1, min.insync.replicas 1); the
three-node cluster is exercised by tests/reliability/test_ha_kafka.py."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from libs.common.bus import create_bus
from libs.common.bus.kafka import KafkaBus
from tests import engines

TOPIC = "khaibao.settings-check"
TOPIC_CONFIG = 1  # DescribeConfigs' source of a value set on the topic itself


def test_min_insync_replicas_above_the_replicas_is_refused() -> None:
    with pytest.raises(ValueError, match="every write would be refused"):
        KafkaBus("127.0.0.1:9", replication_factor=1, min_insync_replicas=2)


def test_topic_configs_name_what_is_set_and_nothing_else() -> None:
    assert KafkaBus("x:1").topic_configs() == {}
    assert KafkaBus("x:1", replication_factor=3, min_insync_replicas=2, retention_ms=1000).topic_configs() == {
        "retention.ms": "1000", "min.insync.replicas": "2"}


async def _topic_settings(bootstrap: str, topic: str) -> dict[str, tuple[str, int]]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    return {c[0]: (c[1], c[3]) for resource in described[0].resources for c in resource[4]}


@pytest.mark.kafka
async def test_created_and_existing_topics_get_every_setting_on_the_topic() -> None:
    bootstrap = engines.kafka_bootstrap()
    if bootstrap is None:
        engines.unavailable("Kafka")
    namespace = f"t{uuid.uuid4().hex[:10]}."
    # A topic created by an older release: retention only.
    older = create_bus(f"kafka://{bootstrap}", namespace=namespace, retention_ms=3_600_000)
    await older.ensure_topics([TOPIC])
    settings = await _topic_settings(bootstrap, namespace + TOPIC)
    assert settings["retention.ms"] == ("3600000", TOPIC_CONFIG)
    assert settings["min.insync.replicas"][1] != TOPIC_CONFIG

    # This release finds it and sets both (the update replaces the topic's settings).
    bus = create_bus(f"kafka://{bootstrap}", namespace=namespace, retention_ms=7_200_000, replication_factor=1,
                     min_insync_replicas=1)
    await bus.ensure_topics([TOPIC, "khaibao.settings-new"])
    wanted = {"retention.ms": ("7200000", TOPIC_CONFIG), "min.insync.replicas": ("1", TOPIC_CONFIG)}
    for topic in (TOPIC, "khaibao.settings-new"):
        for _ in range(40):  # the broker applies the controller's record a moment later
            settings = await _topic_settings(bootstrap, namespace + topic)
            if all(settings[k] == v for k, v in wanted.items()):
                break
            await asyncio.sleep(0.25)
        assert {k: settings[k] for k in wanted} == wanted, topic
