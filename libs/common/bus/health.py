"""The replication of khaibao's topics, as the services see it (several Kafka brokers).

Kafka reports under-replicated and offline partitions through JMX, which needs an exporter
Debian does not ship. Every service on Kafka asks instead, every ``INTERVAL`` seconds, for
the cluster's metadata (the producer's connection, KafkaBus.replication) and exports per
topic:

* ``khaibao_kafka_under_replicated_partitions{service,topic}``: partitions whose in-sync
  replicas are fewer than their replicas (a broker is down, frozen or behind);
* ``khaibao_kafka_offline_partitions{service,topic}``: partitions with no leader (nothing
  can be written there; with min.insync.replicas=2, also what follows the loss of two of
  three brokers);
* ``khaibao_kafka_brokers{service}``: brokers the cluster lists as alive (unfenced).

deploy/prometheus/alerts.yml alerts on them (KafkaUnderReplicatedPartitions,
KafkaOfflinePartitions); deploy/RUNBOOK.md says what to do. When the metadata cannot be
read at all, the gauges keep their last values and the outbox backlog tells the rest.
"""
from __future__ import annotations

import logging

from prometheus_client import Gauge

from .base import BusUnavailable

log = logging.getLogger(__name__)

INTERVAL = 15.0

UNDER_REPLICATED = Gauge(
    "khaibao_kafka_under_replicated_partitions",
    "Partitions of a khaibao topic whose in-sync replicas are fewer than their replicas (the service's view)",
    ["service", "topic"], multiprocess_mode="max")
OFFLINE = Gauge(
    "khaibao_kafka_offline_partitions", "Partitions of a khaibao topic without a leader (the service's view)",
    ["service", "topic"], multiprocess_mode="max")
BROKERS = Gauge("khaibao_kafka_brokers", "Kafka brokers the cluster's metadata lists as alive", ["service"],
                multiprocess_mode="min")


async def report_replication(bus, service: str) -> dict[str, tuple[int, int]]:  # noqa: ANN001 - KafkaBus
    """Read the metadata once and set the gauges; returns what KafkaBus.replication found."""
    found, brokers = await bus.replication()
    for topic, (short, offline) in found.items():
        UNDER_REPLICATED.labels(service, topic).set(short)
        OFFLINE.labels(service, topic).set(offline)
    BROKERS.labels(service).set(brokers)
    return found


async def bus_health_loop(runtime) -> None:  # noqa: ANN001 - libs.common.runtime.Runtime
    """A worker of every service on Kafka: read the replication, then wait."""
    service = runtime.settings.service_name
    while not runtime.stopping.is_set():
        try:
            await report_replication(runtime.bus, service)
        except BusUnavailable as exc:
            log.debug("kafka replication not read: %s", exc)
        await runtime.pause(INTERVAL)
