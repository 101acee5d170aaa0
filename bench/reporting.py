"""Reporting: events per second projected into the read models, and the dashboards' latency
on ten million declarations in PostgreSQL. Prints Markdown tables.

    python -m bench.reporting consume --events 20000                       # SQLite + embedded bus
    python -m bench.reporting consume --events 20000 \\
        --postgres postgresql://u:p@127.0.0.1:5432/postgres --kafka 127.0.0.1:9092
    python -m bench.reporting dashboard --postgres postgresql://u:p@127.0.0.1:5432/postgres \\
        --declarations 10000000 --queries 200

``consume``: ``--events`` events (90 % ``declaration.submitted``, the rest flagged
declarations and alert events, over the city's 312 communes and seven days) are published
to a fresh topic namespace first; then reporting's own consumer (the live handler map of
every read model: batch handlers, ``--batch-size`` events per poll) is started and timed
until every event is recorded as processed.

``dashboard``: a new database (dropped unless ``--keep``) is migrated with reporting's
migrations and filled inside PostgreSQL (``INSERT ... SELECT generate_series``) with the
aggregates exactly as the projection builds them: per unit, hour and result first
(units spread over the 312 communes, 07:00-21:00 local, ``--days`` days), then summed into
communes, districts and the city; venue-day rows (two venues a unit), first declaration and
issued account per unit, registrations, alerts, the venue directory. The dashboards are the
real use case (``area_dashboard`` / ``unit_dashboard``: one read-only transaction, every
query the page runs) for random scopes over the last 14 days. The machine is shared with
other test runs: the figures are noisy.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from libs.common import fieldcrypt, migrate
from libs.common.adminunits import load_tree
from libs.common.bus import OutgoingMessage, create_bus
from libs.common.consumer import EventConsumer, chain_handlers
from libs.common.db import Database
from libs.common.events.declaration import (
    DeclarationFlagged, DeclarationFlaggedData, DeclarationSubmitted, DeclarationSubmittedData, PersonDetails,
    SensitiveDetails,
    VenueRef,
)
from libs.common.events.notification import AlertAcknowledged, AlertAcknowledgedData, AlertRaised, AlertRaisedData
from libs.common.outbox import processed_events
from services.reporting.app import READ_MODELS
from services.reporting.service import Period, area_dashboard, unit_dashboard
from bench.pgdb import create_database, drop_database

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "reporting" / "migrations"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share / 100 * len(ordered) + 0.5)) - 1))]


# --- consume ---------------------------------------------------------------------------

def make_events(count: int, seed: int = 7) -> list:
    rng = random.Random(seed)
    communes = [u.path for u in load_tree(None, "79").walk() if u.depth == 2]
    units = [(uuid.uuid4(), rng.choice(communes)) for _ in range(max(10, count // 50))]
    venues = [(uuid.uuid4(), unit) for unit in units for _ in range(2)]
    start = datetime.now(UTC) - timedelta(days=7)
    events = []
    for i in range(count):
        venue_id, (unit_id, commune) = rng.choice(venues)
        at = start + timedelta(seconds=rng.randrange(7 * 86400))
        kind = rng.random()
        if kind < 0.9:
            events.append(DeclarationSubmitted(producer="bench", jurisdiction=commune, data=DeclarationSubmittedData(
                declaration_id=uuid.uuid4(), submission_id=uuid.uuid4(), venue_id=venue_id, venue_code="ABCDEFGHJK",
                unit_id=unit_id, commune_path=commune, submitted_at=at, valid_until=at + timedelta(days=1),
                result=rng.choice(["green"] * 8 + ["yellow", "red"]), rule_version="1", full_name=f"Người {i}",
                phone="0909000111")))
        elif kind < 0.95:
            events.append(DeclarationFlagged(producer="bench", jurisdiction=commune, data=DeclarationFlaggedData(
                declaration_id=uuid.uuid4(), submission_id=uuid.uuid4(), commune_path=commune, submitted_at=at,
                venue=VenueRef(venue_id=venue_id, venue_code="ABCDEFGHJK", venue_name="Cổng", unit_id=unit_id,
                               unit_name="Đơn vị", address="1 Đường A", commune_path=commune),
                result="red", reasons=["fever"], rule_version="1",
                clear=SensitiveDetails(person=PersonDetails(full_name=f"Người {i}")))))
        else:
            alert_id = uuid.uuid4()
            district = commune.rsplit("/", 1)[0]
            events.append(AlertRaised(producer="bench", jurisdiction=commune, data=AlertRaisedData(
                alert_id=alert_id, source="flagged", source_id=uuid.uuid4(), venue_id=venue_id,
                venue_code="ABCDEFGHJK", unit_id=unit_id, commune_path=commune, district_path=district,
                raised_at=at)))
            if rng.random() < 0.7:
                events.append(AlertAcknowledged(producer="bench", jurisdiction=commune, data=AlertAcknowledgedData(
                    alert_id=alert_id, commune_path=commune, district_path=district, raised_at=at,
                    acknowledged_at=at + timedelta(minutes=rng.randrange(1, 120)), by_role="commune_focal")))
    return events


async def consume(args: argparse.Namespace) -> None:
    events = make_events(args.events)
    tmp = Path(tempfile.mkdtemp(prefix="bench-reporting-"))
    # The visits' name and phone are sealed as the service seals them (a key ring of the run).
    fieldcrypt.register("reporting", fieldcrypt.derived_ring(uuid.uuid4().hex, "reporting"))
    created = None
    if args.postgres:
        created, url = await create_database(args.postgres, "bench_reporting")
    else:
        url = f"sqlite+aiosqlite:///{tmp / 'reporting.db'}"
    bus_url = f"kafka://{args.kafka}" if args.kafka else f"embedded://{tmp / 'bus.db'}"
    namespace = f"bench{uuid.uuid4().hex[:6]}." if args.kafka else ""
    database = Database(url, sqlite_synchronous="NORMAL")
    bus = create_bus(bus_url, partitions=6, namespace=namespace, replication_factor=1, client_id="bench-reporting")
    try:
        await migrate.upgrade(database, MIGRATIONS, "reporting")
        await bus.start()
        for start in range(0, len(events), 1000):
            await bus.publish([OutgoingMessage(topic=e.topic, key=e.partition_key().encode(), value=e.to_bytes(),
                                               headers=(("type", e.type.encode()),))
                               for e in events[start:start + 1000]])
        consumer = EventConsumer(database, bus, "reporting", "reporting", chain_handlers(*READ_MODELS),
                                 batch_size=args.batch_size)
        started = time.perf_counter()
        task = asyncio.create_task(consumer.run())
        while True:
            async with database.transaction(readonly=True) as session:
                done = (await session.execute(select(func.count()).select_from(processed_events))).scalar_one()
            if done >= len(events):
                break
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await bus.stop()
        await database.dispose()
        if created:
            await drop_database(args.postgres, created)
    backend = "PostgreSQL + Kafka" if args.kafka else ("PostgreSQL + embedded bus" if args.postgres
                                                       else "SQLite + embedded bus")
    print(f"\nReporting consumer, {len(events):,} events into every read model ({backend})\n")
    print("| backend | batch size | events | seconds | events/s |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {backend} | {args.batch_size} | {len(events):,} | {elapsed:.1f} | {len(events) / elapsed:,.0f} |")


# --- dashboard -------------------------------------------------------------------------

LOAD = [
    # Units, spread over the communes.
    "CREATE TABLE bench_units AS SELECT g AS u, md5('u' || g)::uuid AS unit_id,"
    " (CAST(:communes AS text[]))[1 + g % CAST(:ncommunes AS int)] AS commune"
    " FROM generate_series(0, CAST(:units AS int) - 1) g",
    # Per unit, hour (07:00-20:59 local = 00:00-13:59 UTC) and result: green 1..11, yellow 0..2, red/flagged 1 in 17.
    "INSERT INTO declaration_hourly (area, hour, result, declarations)"
    " SELECT 'unit:' || b.unit_id, CAST(:base AS timestamp) + (d * 24 + h) * interval '1 hour', r.result, r.n"
    " FROM bench_units b, generate_series(0, CAST(:days AS int) - 1) d, generate_series(0, 13) h,"
    " LATERAL (VALUES ('green', 1 + (b.u * 31 + d * 7 + h * 13) % 11), ('yellow', (b.u + d + h) % 3),"
    "  ('red', CASE WHEN (b.u + d + h * 5) % 17 = 0 THEN 1 ELSE 0 END),"
    "  ('flagged', CASE WHEN (b.u + d + h * 5) % 17 = 0 THEN 1 ELSE 0 END)) AS r(result, n)"
    " WHERE r.n > 0",
    # Per venue and local day: a unit's declarations of each result split over its two venues.
    "INSERT INTO venue_day (venue_id, day, venue_code, unit_id, district_path, commune_path, declarations, red)"
    " SELECT venue_id, day, max(code), (array_agg(unit_id))[1], regexp_replace(max(commune), '/[^/]+$', ''),"
    " max(commune), sum(n), sum(CASE WHEN result = 'red' THEN n ELSE 0 END) FROM ("
    " SELECT md5('v' || b.u || '-' || v)::uuid AS venue_id, CAST(x.hour + interval '7 hours' AS date) AS day,"
    " x.result, upper(substr(md5('c' || b.u || '-' || v), 1, 10)) AS code, b.unit_id, b.commune,"
    " CASE WHEN v = 0 THEN (sum(x.declarations) + 1) / 2 ELSE sum(x.declarations) / 2 END AS n"
    " FROM declaration_hourly x JOIN bench_units b ON x.area = 'unit:' || b.unit_id, generate_series(0, 1) v"
    " WHERE x.result <> 'flagged'"
    " GROUP BY b.u, b.unit_id, b.commune, v, CAST(x.hour + interval '7 hours' AS date), x.result) split"
    " WHERE n > 0 GROUP BY venue_id, day",
    "INSERT INTO declaration_hourly (area, hour, result, declarations)"
    " SELECT b.commune, x.hour, x.result, sum(x.declarations)"
    " FROM declaration_hourly x JOIN bench_units b ON x.area = 'unit:' || b.unit_id"
    " GROUP BY b.commune, x.hour, x.result",
    "INSERT INTO declaration_hourly (area, hour, result, declarations)"
    " SELECT regexp_replace(area, '/[^/]+$', ''), hour, result, sum(declarations) FROM declaration_hourly"
    " WHERE area LIKE '79/%/%' GROUP BY 1, hour, result",
    "INSERT INTO declaration_hourly (area, hour, result, declarations)"
    " SELECT '79', hour, result, sum(declarations) FROM declaration_hourly"
    " WHERE area LIKE '79/%' AND area NOT LIKE '79/%/%' GROUP BY hour, result",
    "INSERT INTO unit_live (unit_id, commune_path, first_at) SELECT unit_id, commune, CAST(:base AS timestamp)"
    " FROM bench_units",
    "INSERT INTO unit_issued (unit_id, registration_id, commune_path, issued_at)"
    " SELECT unit_id, md5('r' || u)::uuid, commune, CAST(:base AS timestamp) FROM bench_units",
    "INSERT INTO registration_funnel (registration_id, commune_path, receiver, submitted, status, status_at, late,"
    " sent, forwarded) SELECT md5('r' || u)::uuid, commune, 'commune', TRUE, 'accepted', CAST(:base AS timestamp),"
    " FALSE, TRUE, TRUE FROM bench_units",
    "INSERT INTO registration_funnel (registration_id, commune_path, receiver, submitted, status, status_at, late,"
    " sent, forwarded) SELECT md5('x' || u)::uuid, commune, 'commune', TRUE, CASE WHEN u % 2 = 0 THEN 'exempt'"
    " ELSE 'submitted' END, CAST(:base AS timestamp), FALSE, FALSE, FALSE FROM bench_units WHERE u % 3 = 0",
    "INSERT INTO alert_facts (alert_id, district_path, commune_path, unit_id, venue_id, source, raised_at,"
    " acknowledged_at) SELECT md5('a' || x.area || x.hour)::uuid, regexp_replace(b.commune, '/[^/]+$', ''),"
    " b.commune, b.unit_id, md5('v' || b.u || '-0')::uuid, 'flagged',"
    " x.hour + interval '17 minutes', CASE WHEN b.u % 4 = 0 THEN NULL"
    " ELSE x.hour + interval '17 minutes' + (b.u % 90) * interval '1 minute' END"
    " FROM declaration_hourly x JOIN bench_units b ON x.area = 'unit:' || b.unit_id WHERE x.result = 'flagged'",
    "INSERT INTO directory_venues (venue_id, code, name, address, unit_id, unit_name, commune_path, active,"
    " created_at, changed_at) SELECT md5('v' || u || '-' || v)::uuid, upper(substr(md5('c' || u || '-' || v), 1, 10)),"
    " 'Cổng ' || (v + 1), u || ' Đường Rừng Sác', unit_id, 'Đơn vị ' || u, commune, TRUE, CAST(:base AS timestamp),"
    " CAST(:base AS timestamp) FROM bench_units, generate_series(0, 1) v",
    "DROP TABLE bench_units",
]


async def dashboard(args: argparse.Namespace) -> None:
    tree = load_tree(None, "79")
    communes = [u.path for u in tree.walk() if u.depth == 2]
    districts = [u.path for u in tree.root.children]
    units = max(1, round(args.declarations / (args.days * 14 * 7)))
    base = (datetime.now(UTC) - timedelta(days=args.days)).replace(hour=0, minute=0, second=0, microsecond=0,
                                                                   tzinfo=None)
    created, url = (None, args.database_url) if args.database_url else await create_database(args.postgres,
                                                                                              "bench_dashboard")
    database = Database(url)
    try:
        await migrate.upgrade(database, MIGRATIONS, "reporting")
        if not args.reuse:
            started = time.perf_counter()
            for statement in LOAD:
                async with database.transaction() as session:
                    await session.execute(text(statement).bindparams(
                        **{k: v for k, v in {"communes": communes, "ncommunes": len(communes), "units": units,
                                             "days": args.days, "base": base}.items()
                           if f":{k}" in statement}))
                print(f"  {statement[:60]}... {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            async with database.connect() as connection:
                await connection.execute(text("COMMIT"))
                # What autovacuum does after a bulk load: statistics, and the visibility map
                # that lets the covering indexes answer without reading the table.
                await connection.exec_driver_sql("VACUUM ANALYZE")
            print(f"  loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        async with database.transaction(readonly=True) as session:
            total = (await session.execute(text(
                "SELECT coalesce(sum(declarations), 0) FROM declaration_hourly WHERE area = '79'"
                " AND result <> 'flagged'"))).scalar_one()
            rows = (await session.execute(text("SELECT count(*) FROM declaration_hourly"))).scalar_one()
            unit_ids = (await session.execute(text("SELECT unit_id FROM unit_live LIMIT 1000"))).scalars().all()
        today = (datetime.now(UTC) + timedelta(hours=7)).date()
        period = Period(today - timedelta(days=13), today)
        rng = random.Random(args.seed)
        scopes = {"city": lambda: ("area", "79"), "district": lambda: ("area", rng.choice(districts)),
                  "commune": lambda: ("area", rng.choice(communes)), "unit": lambda: ("unit", rng.choice(unit_ids))}
        results = {}
        for level, pick in scopes.items():
            latencies = []
            for i in range(args.queries + 5):
                kind, target = pick()
                started = time.perf_counter()
                if kind == "area":  # as the console and the API call them
                    await area_dashboard(database, tree, target, period)
                else:
                    await unit_dashboard(database, tree, target, period)
                if i >= 5:  # warm-up
                    latencies.append((time.perf_counter() - started) * 1000)
            results[level] = latencies
    finally:
        await database.dispose()
        if created and not args.keep:
            await drop_database(args.postgres, created)
    print(f"\nDashboards, PostgreSQL, {total:,} declarations over {args.days} days ({units:,} units, "
          f"{len(communes)} communes; {rows:,} hourly aggregate rows), last 14 days, {args.queries} per scope\n")
    print("| dashboard | p50 ms | p95 ms | p99 ms | max ms | target p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    for level, latencies in results.items():
        print(f"| {level} | {statistics.median(latencies):.1f} | {percentile(latencies, 95):.1f} | "
              f"{percentile(latencies, 99):.1f} | {max(latencies):.1f} | < 200 |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reporting", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("consume", help="events per second projected into the read models")
    one.add_argument("--events", type=int, default=20_000)
    one.add_argument("--postgres", help="PostgreSQL admin URL (a database is created and dropped)")
    one.add_argument("--kafka", help="Kafka bootstrap host:port (default: the embedded bus)")
    one.add_argument("--batch-size", type=int, default=500,
                     help="events per poll (the services' KHAIBAO_<SERVICE>_CONSUMER_BATCH_SIZE, default 500)")
    two = sub.add_parser("dashboard", help="dashboard latency on a large PostgreSQL read model")
    two.add_argument("--postgres", help="PostgreSQL admin URL (a database is created and dropped)")
    two.add_argument("--database-url", help="an existing postgresql+asyncpg URL (with --reuse: already loaded)")
    two.add_argument("--reuse", action="store_true")
    two.add_argument("--keep", action="store_true", help="keep the generated database")
    two.add_argument("--declarations", type=int, default=10_000_000)
    two.add_argument("--days", type=int, default=21)
    two.add_argument("--queries", type=int, default=100)
    two.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.command == "dashboard" and not (args.postgres or args.database_url):
        parser.error("dashboard needs --postgres or --database-url")
    asyncio.run(consume(args) if args.command == "consume" else dashboard(args))


if __name__ == "__main__":
    main()
