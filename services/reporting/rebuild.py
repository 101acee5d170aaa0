"""Rebuild the dashboards' read models by replaying the topics from the start.

    python -m services.reporting.rebuild            # asks for confirmation
    python -m services.reporting.rebuild --yes

Stop every replica of the reporting service first, run the command with the service's
settings (the same ``KHAIBAO_*`` environment), start the service again. The command

1. empties the rebuilt read models (``REBUILT``: the registration funnel and facts, the
   registrations, the dashboards' aggregates and the venue directory);
2. reads every reporting topic from the start with a new consumer group;
3. applies each event to the rebuilt read models, once even when the topic holds it twice
   (the relay delivers at least once: each event id is claimed for the replay in
   ``processed_events`` under the replay's group, rows removed at the end); an event the
   live consumer had not handled yet (it was still behind) is applied to the other read
   models too and recorded as handled, so that the service, started again, skips
   everything replayed and counts nothing twice;
4. applies a polled batch at a time with the live consumer's batch handlers (a few
   statements per batch and table, not per event), in one transaction with the batch's
   claims;
5. stops when the group has no lag left.

The visits (personal data, erased by retention) and the access log are never rebuilt:
a replay cannot bring back erased personal data. If the command is interrupted, run it
again: it starts by emptying the same tables.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import Table, delete

from libs.common import fieldcrypt, migrate
from libs.common.bus import create_bus
from libs.common.consumer import Handler, chain_handlers, claim_events
from libs.common.db import Database
from libs.common.events import Event, MalformedEvent, UnknownEvent, parse_event, topic_for
from libs.common.handlers import apply_each, plan_batch
from libs.common.outbox import processed_events

from . import aggregates, directory, handlers, registrations
from .models import RegistrationFact
from .settings import ReportingSettings

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

REBUILT_HANDLERS = (directory.HANDLERS, handlers.HANDLERS, aggregates.HANDLERS, registrations.HANDLERS)
REBUILT: tuple[Table, ...] = (
    RegistrationFact.__table__, handlers.funnel, registrations.details, *aggregates.READ_MODEL_TABLES,
    directory.venues, directory.units,
)


def _all_handlers() -> dict[str, Handler]:
    from .app import READ_MODELS  # noqa: PLC0415 - the live consumer's maps, in its order

    return chain_handlers(*READ_MODELS)


async def rebuild(settings: ReportingSettings, *, batch_size: int = 500, idle_polls: int = 3,
                  progress: Callable[[int, int], None] | None = None,
                  full: Mapping[str, Handler] | None = None) -> int:
    """Empty the rebuilt read models and replay every event into them; the number of events replayed."""
    service = settings.service_name
    fieldcrypt.register(service, settings.field_ring())  # the visits' sealed name and phone (visits.py)
    database = Database.for_settings(settings)
    bus = create_bus(settings.bus_url, partitions=settings.kafka_partitions, namespace=settings.bus_namespace,
                     replication_factor=settings.kafka_replication_factor,
                     min_insync_replicas=settings.kafka_min_insync_replicas, client_id=f"khaibao-{service}-rebuild",
                     retention_ms=settings.bus_retention_ms())
    full = dict(full or _all_handlers())
    rebuilt = chain_handlers(*REBUILT_HANDLERS)
    replay = f"{service}-rebuild-{uuid.uuid4().hex[:12]}"
    replayed = 0
    try:
        await migrate.upgrade(database, HERE / "migrations", service)
        await bus.start()
        async with database.transaction() as session:
            for table in REBUILT:
                await session.execute(delete(table))
            await session.execute(delete(processed_events).where(  # an interrupted replay's claims
                processed_events.c.consumer.like(f"{service}-rebuild-%")))
        consumer = bus.consumer(replay, sorted({topic_for(t) for t in full}))
        await consumer.start()
        try:
            idle = 0
            while idle < idle_polls:
                messages = await consumer.poll(max_records=batch_size, timeout=1.0)
                if not messages:
                    idle = idle + 1 if sum((await consumer.lag()).values()) == 0 else 0
                    continue
                idle = 0
                async with database.transaction() as session:
                    replayed += await _replay_batch(session, service, replay, messages, full, rebuilt)
                for message in {(m.topic, m.partition): m for m in messages}.values():
                    await consumer.commit(message)
                if progress is not None:
                    progress(replayed, sum((await consumer.lag()).values()))
        finally:
            try:
                await consumer.leave()  # a one-off group: not a lagging consumer for the bus's retention
            finally:
                await consumer.stop()
        async with database.transaction() as session:
            await session.execute(delete(processed_events).where(processed_events.c.consumer == replay))
    finally:
        await bus.stop()
        await database.dispose()
    return replayed


async def _replay_batch(session, service: str, replay: str, messages, full: Mapping[str, Handler],  # noqa: ANN001
                        rebuilt: Mapping[str, Handler]) -> int:
    """Apply one polled batch: each event once (first copy in this replay), with every read
    model's handler if the live consumer had not handled it, else with the rebuilt ones."""
    events: list[Event] = []
    for message in messages:
        try:
            event = parse_event(message.value)
        except (MalformedEvent, UnknownEvent):
            continue  # the live consumer dead-lettered it
        if event.type in full:
            events.append(event)
    first = await claim_events(session, replay, list(dict.fromkeys(str(e.id) for e in events)))
    unique = []
    for event in events:
        if str(event.id) in first:  # not seen earlier in this replay, nor earlier in this batch
            first.discard(str(event.id))
            unique.append(event)
    events = unique
    behind = await claim_events(session, service, [str(e.id) for e in events])
    work = [(e, full[e.type] if str(e.id) in behind else rebuilt[e.type])
            for e in events if str(e.id) in behind or e.type in rebuilt]
    for handler, group in plan_batch(work):
        await apply_each(handler, session, group)
    return len(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.reporting.rebuild", description=__doc__.split("\n")[0])
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args(argv)
    if not args.yes:
        answer = input("Stop every replica of the reporting service first. Rebuild now? [y/N] ")
        if answer.strip().lower() not in ("y", "yes", "c", "có"):
            return 1
    logging.basicConfig(level=logging.INFO)
    started = time.monotonic()
    last = [0.0]

    def progress(done: int, lag: int) -> None:
        if time.monotonic() - last[0] > 2:
            last[0] = time.monotonic()
            print(f"  {done} events replayed, {lag} to go", flush=True)

    count = asyncio.run(rebuild(ReportingSettings(), progress=progress))
    print(f"rebuilt from {count} events in {time.monotonic() - started:.1f}s; start the service again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
