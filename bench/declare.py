"""Declarations per second through POST /api/declarations, with latency and the count lost.

    python -m bench.declare                          # embedded mode (SQLite + embedded bus)
    KHAIBAO_TEST_POSTGRES_URL=postgresql://u:p@127.0.0.1:5432/postgres \\
    KHAIBAO_TEST_KAFKA_BOOTSTRAP=127.0.0.1:9092 python -m bench.declare --only kafka
    python -m bench.declare --workers 2 4 --duration 15 --connections 64
    python -m bench.declare --only embedded --encryption on off --rounds 3   # the cost of encryption at rest

For each backend and each number of web workers, the real declaration service runs under
uvicorn (``khaibao serve declaration --workers N``) with its bench routes on, and a load
generator in its own process (bench/declare_load.py, closed loop on loopback, bounded by
--duration and --count) sends one-person declarations to three routes of the same stack:

- ``/api/bench/validate``: the validation ceiling (parsed, validated, screened; nothing stored);
- ``/api/declarations``: the real hot path (group commit: many requests, one transaction);
- ``/api/bench/naive``: an ORM session and a transaction per request.

Rates count 2xx answers per second after the warm-up; latency runs from the first byte
sent to the last byte received. Afterwards every declaration answered 2xx is looked up in
the database and its ``declaration.submitted`` event on the bus (read back by a fresh
consumer group from the start of the topic): ``lost`` counts those missing from either.
CPU seconds per second of each part are printed too, since everything shares 2 cores.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from libs.common import migrate
from libs.common.bus import create_bus
from libs.common.db import Database
from bench.cpu import cpu_seconds, machine_busy_seconds, tree
from bench.declare_table import median_rounds, print_encryption_cost, print_table
from bench.pgdb import create_database
from bench.server import REPO, start_service, stop_server
from tests.infra.process import free_port

MIGRATIONS = REPO / "services" / "declaration" / "migrations"
ROUTES = {"ceiling": "/api/bench/validate", "group commit": "/api/declarations", "naive": "/api/bench/naive"}
COMMUNES = [("760", "26734"), ("760", "26740"), ("769", "26824"), ("787", "27664"), ("787", "27667"),
            ("770", "27127"), ("775", "27358"), ("783", "27550")]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi"]
MIDDLE = ["Văn", "Thị", "Minh", "Ngọc", "Thanh", "Hữu", "Thu", "Quốc"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Khánh", "Linh", "Nam", "Phúc", "Quân", "Tâm", "Uyên"]


SERVER_SETTINGS: dict[str, str] = {}  # --set KHAIBAO_...=value: a setting of the server under test


@dataclass
class Target:
    name: str
    database_url: str
    bus_url: str
    namespace: str
    data_dir: Path
    venue_codes: list[str] = field(default_factory=list)


def person(rng: random.Random) -> dict:
    district, commune = rng.choice(COMMUNES)
    sick = rng.random() < 0.05
    return {
        "full_name": f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
        "id_number": f"079{rng.randrange(10**9):09d}", "birth": f"{rng.randint(1,28):02d}/{rng.randint(1,12):02d}/"
                                                              f"{rng.randint(1950, 2004)}",
        "gender": rng.choice(["male", "female"]), "phone": f"09{rng.randrange(10**8):08d}",
        "province_code": "79", "district_code": district, "commune_code": commune,
        "street": f"{rng.randint(1, 300)} Đường số {rng.randint(1, 40)}",
        "symptoms": ["fever", "cough"] if sick else [], "exposures": [],
    }


def write_bodies(path: Path, venue_codes: list[str], count: int = 4000) -> None:
    rng = random.Random(2021)
    lines = []
    for i in range(count):
        body = {"venue_code": venue_codes[i % len(venue_codes)], "people": [person(rng)], "consent": True,
                "idempotency_key": "@@KEY@@"}
        lines.append(json.dumps(body, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def seed(target: Target, venues: int = 50) -> None:
    from services.declaration.models import Venue

    database = Database(target.database_url)
    await migrate.upgrade(database, MIGRATIONS, "declaration")
    codes = [f"BENCH{i:05d}" for i in range(venues)]
    async with database.transaction() as session:
        for code in codes:
            session.add(Venue(venue_id=uuid.uuid4(), code=code, unit_id=uuid.uuid4(), unit_name="Chợ thử tải",
                              name=f"Cổng {code}", address="1 Lương Văn Nho", commune_path="79/787/27664",
                              active=True, updated_at=time.time()))
    await database.dispose()
    target.venue_codes = codes


async def pg_database(admin_url: str) -> str:
    return (await create_database(admin_url, "bench_decl"))[1]


# --- the server ------------------------------------------------------------------------

def start_server(target: Target, workers: int, port: int, log: Path, ready_timeout: float = 180,
                 settings: dict[str, str] | None = None) -> subprocess.Popen:
    # Several /readyz answers: every worker is up. The load comes from one address:
    # throughput, not the per-address limits (bench/flood.py), so they stay off.
    return start_service("declaration", port, data_dir=target.data_dir, log=log, workers=workers,
                         ready_timeout=ready_timeout, ready_answers=workers * 3, settle=1.0, settings={
                             "KHAIBAO_BUS_URL": target.bus_url, "KHAIBAO_BUS_NAMESPACE": target.namespace,
                             "KHAIBAO_DECLARATION_DATABASE_URL": target.database_url,
                             "KHAIBAO_DECLARATION_BENCH_ROUTES": "true", **SERVER_SETTINGS, **(settings or {})})


# --- one run -----------------------------------------------------------------------------

def run_load(port: int, path: str, bodies: Path, args: argparse.Namespace, ids_out: Path | None,
             server_pids: list[int]) -> dict:
    command = [sys.executable, "-m", "bench.declare_load", "--port", str(port), "--path", path,
               "--bodies", str(bodies), "--connections", str(args.connections), "--duration", str(args.duration),
               "--warmup", str(args.warmup), "--count", str(args.count), "--rate", str(args.rate)]
    if ids_out is not None:
        command += ["--ids-out", str(ids_out)]
    server_before, busy_before, started = cpu_seconds(server_pids), machine_busy_seconds(), time.monotonic()
    load = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    load_pids = [load.pid]
    load_cpu = 0.0
    while load.poll() is None:
        load_cpu = max(load_cpu, cpu_seconds(load_pids))
        if time.monotonic() - started > args.duration + 60:  # a stalled server: the run is bounded anyway
            load.kill()
            raise RuntimeError(f"the load generator did not finish within {args.duration + 60:.0f} s")
        time.sleep(0.2)
    out, err = load.communicate()
    elapsed = time.monotonic() - started
    if load.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode()[-2000:]}")
    result = json.loads(out)
    server_cpu = cpu_seconds(server_pids) - server_before
    busy = machine_busy_seconds() - busy_before
    result["cpu"] = {"server": server_cpu / elapsed, "load": load_cpu / elapsed,
                     "rest": max(0.0, busy - server_cpu - load_cpu) / elapsed}
    return result


async def drained(target: Target, timeout: float = 300) -> float:
    """Wait until the outbox is empty (every event handed to the bus); the seconds it took."""
    database = Database(target.database_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            async with database.transaction(readonly=True) as session:
                if not (await session.execute(text("SELECT count(*) FROM outbox"))).scalar_one():
                    return time.monotonic() - started
            await asyncio.sleep(0.25)
        return float("nan")
    finally:
        await database.dispose()


async def stored_ids(target: Target, ids: list[str]) -> set[str]:
    database = Database(target.database_url)
    found: set[str] = set()
    try:
        async with database.transaction(readonly=True) as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                if database.sqlite:
                    values = [uuid.UUID(i).hex for i in chunk]
                    rows = await session.execute(text(
                        f"SELECT id FROM declarations WHERE id IN ({','.join(f':p{n}' for n in range(len(values)))})"),
                        {f"p{n}": v for n, v in enumerate(values)})
                    found.update(str(uuid.UUID(r[0])) for r in rows)
                else:
                    rows = await session.execute(text("SELECT id FROM declarations WHERE id = ANY(:ids)"),
                                                 {"ids": [uuid.UUID(i) for i in chunk]})
                    found.update(str(r[0]) for r in rows)
    finally:
        await database.dispose()
    return found


async def ids_on_bus(target: Target, wanted: set[str], timeout: float = 120) -> set[str]:
    bus = create_bus(target.bus_url, namespace=target.namespace)
    await bus.start()
    consumer = bus.consumer(f"bench-check-{uuid.uuid4().hex[:8]}", ["khaibao.declaration"])
    await consumer.start()
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    idle = 0
    try:
        while time.monotonic() < deadline and not wanted <= seen:
            messages = await consumer.poll(max_records=5000, timeout=1.0)
            idle = idle + 1 if not messages else 0
            if idle > 10:
                break
            for message in messages:
                event = json.loads(message.value)
                if event.get("type") == "declaration.submitted":
                    seen.add(event["data"]["declaration_id"])
    finally:
        await consumer.leave()  # a one-off check group, not a consumer the bus's retention should wait for
        await consumer.stop()
        await bus.stop()
    return seen


# --- the whole benchmark ------------------------------------------------------------------

async def bench_target(target: Target, args: argparse.Namespace, work: Path) -> list[dict]:
    await seed(target)
    bodies = work / "bodies.jsonl"
    write_bodies(bodies, target.venue_codes)
    results: list[dict] = []
    checks: list[tuple[dict, set[str]]] = []
    for workers in args.workers:
        # One server per encryption setting (--encryption on off), side by side on the same
        # database: the rounds take turns between them as between the routes.
        servers: dict[str, tuple[subprocess.Popen, int]] = {}
        try:
            for encryption in args.encryption:
                port = free_port()
                try:
                    servers[encryption] = (start_server(
                        target, workers, port, work / f"server-{encryption}.log", args.ready_timeout,
                        {"KHAIBAO_FIELD_ENCRYPTION": "true" if encryption == "on" else "false"}), port)
                except RuntimeError as exc:  # the other runs still go into the table
                    print(f"  {target.name}, {workers} workers, encryption {encryption}: SKIPPED, "
                          f"{str(exc)[:300]}", flush=True)
            # Rounds take turns between the routes, so that a slow spell of a shared machine
            # falls on each route alike; the table shows each route's median round. The
            # ceiling stores nothing: it runs on the first server only.
            runs = [(t, m, e) for t in range(1, args.rounds + 1) for m in args.modes for e in servers
                    if m != "ceiling" or e == next(iter(servers))]
            for turn, mode, encryption in runs:
                server, port = servers[encryption]
                label = mode if len(args.encryption) == 1 or mode == "ceiling" else f"{mode}, encryption {encryption}"
                ids_file = (work / f"ids-{workers}-{mode.replace(' ', '_')}-{encryption}-{turn}.txt"
                            if mode != "ceiling" else None)
                print(f"  {target.name}, {workers} workers: {label}, round {turn} of {args.rounds} ...", flush=True)
                try:
                    result = run_load(port, ROUTES[mode], bodies, args, ids_file, tree(server.pid))
                except RuntimeError as exc:
                    print(f"  {target.name}, {workers} workers, {label}: FAILED, {str(exc)[:300]}", flush=True)
                    continue
                result.update(backend=target.name, workers=workers, mode=label)
                if ids_file is not None:
                    result["drain_seconds"] = await drained(target)
                    ids = [i for i in ids_file.read_text().splitlines() if i]
                    result["stored"] = len(await stored_ids(target, ids))
                    result["answered"] = len(ids)
                    checks.append((result, set(ids)))
                results.append(result)
        finally:
            for server, _port in servers.values():
                stop_server(server)
    if checks:
        wanted = set().union(*(ids for _, ids in checks))
        seen = await ids_on_bus(target, wanted)
        for result, ids in checks:
            result["on_bus"] = len(ids & seen)
            result["lost"] = len(ids) - min(result["stored"], result["on_bus"])
    return median_rounds(results)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["embedded", "kafka"])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--modes", nargs="+", default=["ceiling", "group commit", "naive"],
                        choices=list(ROUTES))
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the routes in turn this many times and show each route's median round "
                             "(a shared machine's slow spells fall on every route alike)")
    parser.add_argument("--count", type=int, default=400_000, help="at most this many requests per run")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="a fixed offered load (requests/s) instead of as fast as answered: compares the "
                             "CPU per declaration of two versions under the same load")
    parser.add_argument("--ready-timeout", type=float, default=180,
                        help="seconds a server may take to start (a loaded machine starts slowly)")
    parser.add_argument("--encryption", nargs="+", default=["on"], choices=["on", "off"],
                        help="personal fields encrypted at rest (on, the only production setting) or stored in "
                             "clear (off, KHAIBAO_FIELD_ENCRYPTION=false): 'on off' runs both side by side in "
                             "the same rounds and prints the cost per declaration")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--set", action="append", default=[], metavar="KHAIBAO_NAME=VALUE",
                        help="a setting of the server under test (repeatable), e.g. "
                             "--set KHAIBAO_DECLARATION_BATCH_LINGER_MS=0")
    args = parser.parse_args()
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("KHAIBAO_"):
            parser.error(f"--set takes KHAIBAO_NAME=VALUE, not {item!r}")
        SERVER_SETTINGS[name] = value
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="khaibao-bench-declare-") as tmp:
        work = Path(tmp)
        if args.only in (None, "embedded"):
            data = work / "embedded"
            data.mkdir()
            target = Target("SQLite + embedded bus", f"sqlite+aiosqlite:///{data / 'declaration.db'}",
                            f"embedded://{data / 'bus.db'}", "", data)
            results += await bench_target(target, args, data)
        pg, kafka = os.environ.get("KHAIBAO_TEST_POSTGRES_URL"), os.environ.get("KHAIBAO_TEST_KAFKA_BOOTSTRAP")
        if args.only in (None, "kafka"):
            if pg and kafka:
                data = work / "kafka"
                data.mkdir()
                target = Target("PostgreSQL + Kafka", await pg_database(pg), f"kafka://{kafka}",
                                f"bench{uuid.uuid4().hex[:6]}.", data)
                results += await bench_target(target, args, data)
            else:
                print("PostgreSQL + Kafka skipped: set KHAIBAO_TEST_POSTGRES_URL and KHAIBAO_TEST_KAFKA_BOOTSTRAP")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print_table(results)
    if len(args.encryption) > 1:
        print_encryption_cost(results)
        from bench.fieldcrypt import print_micro
        print_micro()


if __name__ == "__main__":
    asyncio.run(main())
