"""The bus keeps messages as long as the services keep personal data, and no longer.

KHAIBAO_DATA_RETENTION_DAYS (default 21, the circular's period) is the longest time any
service keeps a person's details; every service's own retention defaults to it and may not
exceed it (settings.py). The bus keeps its messages exactly that long:

* the embedded bus: every process runs ``bus_retention_loop``, which deletes the messages
  published more than that long ago (``EmbeddedBus.prune``, idempotent: processes take
  turns on the file's write lock, whichever comes first does the work);
* Kafka: each topic is created (or, at start, updated) with ``retention.ms`` of that many
  days, and the broker deletes by time (kafka.py; docker-compose.yml's broker default is
  derived from the same variable). A consumer whose group's committed offset is below a
  partition's first offset (the broker deleted what the group had not read) reports it the
  same way (KafkaConsumer.lag, every few seconds).

No consumer group lags past it silently. Pruning does not wait for a lagging group: a
person's details must not outlive the period because a consumer is stuck, and a message
that old would be erased by its consumer's own retention as soon as it was handled. Each
message deleted before its group consumed it is counted in
``khaibao_bus_consumer_lag_past_retention_total{group,topic}`` and logged as an ERROR; the
age of each group's oldest unconsumed message is
``khaibao_bus_oldest_unconsumed_age_seconds{group,topic}``, so a group that falls behind is
seen (and alerted on) long before the retention reaches it.
"""
from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Gauge

from .embedded import EmbeddedBus, PruneReport

log = logging.getLogger(__name__)

PRUNED = Counter("khaibao_bus_messages_pruned_total",
                 "Embedded bus messages deleted because they were older than KHAIBAO_DATA_RETENTION_DAYS",
                 ["service"])
LAG_PAST_RETENTION = Counter(
    "khaibao_bus_consumer_lag_past_retention_total",
    "Messages the bus deleted at the end of the retention period before their consumer group consumed them",
    ["service", "group", "topic"])
OLDEST_UNCONSUMED = Gauge(
    "khaibao_bus_oldest_unconsumed_age_seconds",
    "Age of the oldest message a consumer group has not consumed yet (0: up to date)",
    ["service", "group", "topic"], multiprocess_mode="max")


def report_deleted_unread(service: str, group: str, topic: str, count: int, retention: str) -> None:
    """``count`` messages of ``topic`` were deleted before ``group`` consumed them."""
    LAG_PAST_RETENTION.labels(service, group, topic).inc(count)
    log.error("bus retention: consumer group %s had not consumed %d messages of %s older than %s; "
              "deleted unread (the group lags past the retention period)", group, count, topic, retention)


async def prune_bus(bus: EmbeddedBus, *, retention_days: float, service: str, now: float | None = None) -> PruneReport:
    """Delete what is older than the period (``now``: epoch seconds, moved by the tests);
    report the groups that had not consumed it; refresh the oldest-unconsumed gauge."""
    now = time.time() if now is None else now
    report = await bus.prune(now - retention_days * 86_400)
    if report.deleted:
        PRUNED.labels(service).inc(report.deleted)
        log.info("bus retention: %d messages older than %g days deleted", report.deleted, retention_days)
    for (group, topic), count in sorted(report.unconsumed.items()):
        report_deleted_unread(service, group, topic, count, f"{retention_days:g} days")
    for (group, topic), oldest in (await bus.backlog()).items():
        OLDEST_UNCONSUMED.labels(service, group, topic).set(0 if oldest is None else max(0.0, now - oldest))
        LAG_PAST_RETENTION.labels(service, group, topic)  # its series at 0: the dashboard shows "none"
    return report


async def bus_retention_loop(runtime) -> None:  # noqa: ANN001 - libs.common.runtime.Runtime
    """A worker of every service on the embedded bus: prune, then wait."""
    settings = runtime.settings
    while not runtime.stopping.is_set():
        await prune_bus(runtime.bus, retention_days=settings.data_retention_days, service=settings.service_name)
        await runtime.pause(settings.bus_retention_interval_seconds)
