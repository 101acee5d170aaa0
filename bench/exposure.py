"""The exposure query on a large visits table in PostgreSQL: p50 / p95 / p99.

    KHAIBAO_TEST_POSTGRES_URL=postgresql://u:p@127.0.0.1:5432/postgres \\
        python -m bench.exposure --rows 10000000
    python -m bench.exposure --database-url postgresql+asyncpg://u:p@host/db --reuse   # data already loaded

A new database (dropped at the end unless ``--keep``) is migrated with reporting's own
migrations, then filled without the bus: ``--venues`` venues of the district's communes in
the directory, and ``--rows`` declarations spread over ``--days`` days, generated inside
PostgreSQL (``INSERT ... SELECT generate_series``, in chunks of a million; the secondary
indexes are dropped during the load and rebuilt after it, then ANALYZE). Names and phones
are sealed as the service seals them (libs/common/fieldcrypt.py, a fixed bench key ring):
``SEALED_POOL`` values sealed in Python, assigned to the rows in turn, so that every query
opens (decrypts) the name and phone of each contact it returns.

Each query is the real use case, as the console and the API run it: one transaction that
resolves the venue in the caller's jurisdiction (a district health officer), reads the
contacts in the window through the (venue_id, submitted_at) index, and writes the access
log entry, then commits. ``--queries`` random venues and windows of ``--window-hours``.
The machine is shared: figures are noisy.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, select, text

from libs.common import fieldcrypt, migrate
from libs.common.auth import Principal, Role
from libs.common.db import Database
from services.reporting.exposure import PAGE_ROWS, ExposureQuery, ExposureResult, run_exposure
from services.reporting.visits import visits
from bench.pgdb import create_database, drop_database

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "reporting" / "migrations"
DISTRICT = "79/787"
COMMUNES = ["79/787/27664", "79/787/27667", "79/787/27670", "79/787/27673", "79/787/27676", "79/787/27679"]
BASE = datetime(2021, 6, 1, tzinfo=UTC)
CHUNK = 1_000_000
SEALED_POOL = 1000


def venue_uuid(index: int) -> uuid.UUID:
    """The same id as ``md5('v' || index)::uuid`` in SQL."""
    import hashlib

    return uuid.UUID(hashlib.md5(f"v{index}".encode()).hexdigest())


async def load(database: Database, rows: int, venues: int, days: int) -> float:
    started = time.perf_counter()
    seconds = days * 86400
    ring = fieldcrypt.ring("reporting")
    names = [ring.seal(f"Người khai {n}", "visits.full_name") for n in range(SEALED_POOL)]
    phones = [ring.seal(f"09{n:08d}", "visits.phone") for n in range(SEALED_POOL)]
    async with database.transaction() as session:
        await session.execute(text(
            "INSERT INTO directory_venues (venue_id, code, name, address, unit_id, unit_name, commune_path, active,"
            " created_at, changed_at) SELECT md5('v' || g)::uuid, upper(substr(md5('c' || g), 1, 10)),"
            " 'Cổng ' || g, g || ' Đường Rừng Sác', md5('u' || g)::uuid, 'Đơn vị ' || g,"
            " (ARRAY[CAST(:c0 AS text), :c1, :c2, :c3, :c4, :c5])[1 + g % 6], true, :base, :base"
            " FROM generate_series(0, CAST(:last AS bigint)) g"),
            {"base": BASE, "last": venues - 1, **{f"c{i}": c for i, c in enumerate(COMMUNES)}})
        found = (await session.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'visits' AND indexname <> 'visits_pkey'"
        ))).all()
        constraints = (await session.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'visits'::regclass"
            " AND contype = 'u'"))).all()
        for name, _ in constraints:
            await session.execute(text(f'ALTER TABLE visits DROP CONSTRAINT "{name}"'))
        constraint_names = {name for name, _ in constraints}
        indexes = [(name, definition) for name, definition in found if name not in constraint_names]
        for name, _ in indexes:
            await session.execute(text(f'DROP INDEX "{name}"'))
    for start in range(0, rows, CHUNK):
        end = min(rows, start + CHUNK) - 1
        async with database.transaction() as session:
            await session.execute(text(
                "INSERT INTO visits (declaration_id, submission_id, venue_id, venue_code, unit_id, commune_path,"
                " submitted_at, result, reasons, rule_version, channel, group_size, full_name, phone, received_at)"
                " SELECT md5('d' || g)::uuid, md5('s' || g)::uuid, md5('v' || ((g * 7919) % CAST(:venues AS bigint)))::uuid, 'CODE',"
                " md5('u' || ((g * 7919) % CAST(:venues AS bigint)))::uuid, (ARRAY[CAST(:c0 AS text), :c1, :c2, :c3, :c4, :c5])[1 + ((g * 7919) % CAST(:venues AS bigint)) % 6],"
                " CAST(:base AS timestamptz) + make_interval(secs => ((g * 104729) % CAST(:seconds AS bigint))::float8),"
                " CASE WHEN g % 50 = 0 THEN 'red' WHEN g % 7 = 0 THEN 'yellow' ELSE 'green' END, '[]', '2021-06',"
                " CASE WHEN g % 5 = 0 THEN 'gate' ELSE 'self' END, 1, (CAST(:names AS text[]))[1 + g % CAST(:pool AS bigint)],"
                " (CAST(:phones AS text[]))[1 + g % CAST(:pool AS bigint)], now()"
                " FROM generate_series(CAST(:start AS bigint), CAST(:end AS bigint)) g"),
                {"venues": venues, "names": names, "phones": phones, "pool": SEALED_POOL, "base": BASE, "seconds": seconds, "start": start, "end": end,
                 **{f"c{i}": c for i, c in enumerate(COMMUNES)}})
        print(f"  loaded {end + 1:,} / {rows:,} declarations ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)
    async with database.transaction() as session:
        for name, definition in constraints:
            await session.execute(text(f'ALTER TABLE visits ADD CONSTRAINT "{name}" {definition}'))
        for _, definition in indexes:
            await session.execute(text(definition))
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE visits"))
        await conn.execute(text("ANALYZE directory_venues"))
    return time.perf_counter() - started


async def measure(database: Database, venues: int, days: int, queries: int, window_hours: float,
                  seed: int) -> tuple[list[float], list[int]]:
    principal = Principal(account_id="bench", username="yte.bench", name="Cán bộ y tế (bench)",
                          role=Role.HEALTH_OFFICER, jurisdiction=DISTRICT)
    rng = random.Random(seed)
    window = timedelta(hours=window_hours)
    latencies, found = [], []
    for number in range(queries + 20):
        start = BASE + timedelta(seconds=rng.randrange(0, int(days * 86400 - window.total_seconds())))
        query = ExposureQuery("CG-BENCH", "Đo hiệu năng tra cứu người tiếp xúc", venue_uuid(rng.randrange(venues)),
                              None, None, start, start + window)
        began = time.perf_counter()
        async with database.transaction() as session:
            result = await run_exposure(session, principal, query)
        elapsed = time.perf_counter() - began
        assert isinstance(result, ExposureResult), result
        if number >= 20:  # the first ones warm the pool and the caches
            latencies.append(elapsed * 1000)
            found.append(result.total)
    return latencies, found


async def measure_read(database: Database, venues: int, days: int, queries: int, window_hours: float,
                       seed: int) -> list[float]:
    """The contacts' SELECT alone (read-only transaction, no access log, no commit to wait for)."""
    rng = random.Random(seed + 1)
    window = timedelta(hours=window_hours)
    latencies = []
    statement = (select(visits.c.declaration_id, visits.c.submitted_at, visits.c.full_name, visits.c.phone,
                        visits.c.result, visits.c.channel, visits.c.group_size)
                 .where(visits.c.venue_id == bindparam("venue"), visits.c.submitted_at >= bindparam("start"),
                        visits.c.submitted_at <= bindparam("end"))
                 .order_by(visits.c.submitted_at, visits.c.seq).limit(PAGE_ROWS + 1))
    for number in range(queries + 20):
        start = BASE + timedelta(seconds=rng.randrange(0, int(days * 86400 - window.total_seconds())))
        began = time.perf_counter()
        async with database.transaction(readonly=True) as session:
            (await session.execute(statement, {"venue": venue_uuid(rng.randrange(venues)), "start": start,
                                               "end": start + window})).all()
        if number >= 20:
            latencies.append((time.perf_counter() - began) * 1000)
    return latencies


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="declarations to generate (default 200000)")
    parser.add_argument("--venues", type=int, default=None, help="venues (default: rows / 500, at least 100)")
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--window-hours", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", help="an existing postgresql+asyncpg URL (with --reuse: already loaded)")
    parser.add_argument("--reuse", action="store_true", help="do not load: the database holds the data already")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    args = parser.parse_args()
    venues = args.venues or max(100, args.rows // 500)

    admin = os.environ.get("KHAIBAO_TEST_POSTGRES_URL")
    created = None
    if args.database_url:
        url = args.database_url
    elif admin:
        created, url = await create_database(admin, "bench_exposure")
    else:
        sys.exit("set KHAIBAO_TEST_POSTGRES_URL (a superuser URL) or pass --database-url")
    database = Database(url)
    fieldcrypt.register("reporting", fieldcrypt.derived_ring("bench exposure", "reporting"))  # --reuse opens it again
    try:
        load_seconds = 0.0
        if not args.reuse:
            await migrate.upgrade(database, MIGRATIONS, "reporting")
            load_seconds = await load(database, args.rows, venues, args.days)
        latencies, found = await measure(database, venues, args.days, args.queries, args.window_hours, args.seed)
        reads = await measure_read(database, venues, args.days, args.queries, args.window_hours, args.seed)
    finally:
        await database.dispose()
        if created and not args.keep:
            await drop_database(admin, created)
    print(f"\nExposure query, PostgreSQL, {args.rows:,} declarations over {args.days} days, {venues:,} venues, "
          f"windows of {args.window_hours:g} h (load {load_seconds:.0f} s)\n")
    print("| measured | queries | contacts per query (mean) | p50 ms | p95 ms | p99 ms | max ms | target p95 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, values in (("use case: venue check, contacts, access log, commit", latencies),
                          ("contacts SELECT alone (read-only)", reads)):
        print(f"| {label} | {len(values)} | {statistics.mean(found):.1f} | {percentile(values, 50):.1f} | "
              f"{percentile(values, 95):.1f} | {percentile(values, 99):.1f} | {max(values):.1f} | < 50 ms |")


if __name__ == "__main__":
    asyncio.run(main())
