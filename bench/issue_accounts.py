"""Issuing accounts for a forwarded batch: 10,000 units in under 3 minutes?

    python -m bench.issue_accounts                      # 10,000 units, embedded mode (SQLite + embedded bus)
    python -m bench.issue_accounts --units 2000 --workers 1
    python -m bench.issue_accounts --compare-default 300   # also time argon2's default cost on 300 units

The provisioning service runs in this process with its lifespan (migrations, relay,
consumer, the issuing worker and its process pool), on a fresh SQLite file and embedded
bus. A batch of --units units (1 to 3 gates each, 60 % with an e-mail address) is
forwarded as intake does it, in parts of 1,000 units, through an outbox, the relay and
the bus; provisioning's consumer keeps it. Then the city asks, over HTTP, to issue the
whole batch, and the job is polled over HTTP until it is done, as the progress page
does. Timed: the job (from the request to the last unit issued: each unit a random
password, its argon2id hash, its sealed box, the unit, its venues and account rows, and
its events in the outbox), then the relay until every event is on the bus.

Prints a Markdown table for the README. The machine is shared with other work; figures
are noisy.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from argon2 import PasswordHasher

from libs.common.auth import Principal, Role, TokenSigner, generate_key_pair, load_private_key
from libs.common.bus import create_bus
from libs.common.db import Database
from libs.common.events.intake import BatchForwarded, BatchForwardedData, ForwardedUnit
from libs.common.outbox import OutboxRelay, metadata, publish

COMMUNES = ["79/787/27664", "79/787/27667", "79/787/27670", "79/787/27673", "79/787/27676", "79/787/27679",
            "79/787/27682"]
PART = 1000


def make_units(count: int, seed: int = 2021) -> list[ForwardedUnit]:
    rng = random.Random(seed)
    units = []
    for i in range(count):
        units.append(ForwardedUnit(
            registration_id=uuid.uuid4(), reference=f"DK-{i:06d}", unit_name=f"Cơ sở kinh doanh thử số {i}",
            unit_type=rng.choice(["company", "school", "market", "essential_shop", "business"]),
            address=f"{rng.randint(1, 300)} Đường Lương Văn Nho", commune_path=rng.choice(COMMUNES),
            contact_name="Nguyễn Văn Thử", contact_phone="0909000000",
            contact_email=f"donvi{i}@example.vn" if rng.random() < 0.6 else None, venue_count=rng.randint(1, 3)))
    return units


async def forward(data_dir: Path, bus_url: str, units: list[ForwardedUnit]) -> str:
    """Intake's part: the batch in parts, through an outbox of its own, the relay and the bus."""
    database = Database(f"sqlite+aiosqlite:///{data_dir / 'bench-intake.db'}", sqlite_synchronous="NORMAL")
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    bus = create_bus(bus_url)
    await bus.start()
    batch_id = uuid.uuid4()
    parts = (len(units) + PART - 1) // PART
    try:
        async with database.transaction() as session:
            await publish(session, *[BatchForwarded(producer="intake", jurisdiction="79/787", data=BatchForwardedData(
                batch_id=batch_id, reference="LO-BENCH", district_path="79/787", units=units[i * PART:(i + 1) * PART],
                part=i + 1, parts=parts, total_units=len(units))) for i in range(parts)])
        relay = OutboxRelay(database, bus, "intake", batch_size=10)
        while await relay.relay_once():
            pass
    finally:
        await bus.stop()
        await database.dispose()
    return str(batch_id)


async def run(units: int, workers: int, time_cost: int, memory_kib: int, chunk: int) -> dict:
    from services.provisioning.app import create_app
    from services.provisioning.settings import ProvisioningSettings

    with tempfile.TemporaryDirectory(prefix="khaibao-bench-") as tmp:
        data_dir = Path(tmp)
        private, public = data_dir / "keys" / "token-private.pem", data_dir / "keys" / "token-public.pem"
        generate_key_pair(private, public)
        bus_url = f"embedded://{data_dir / 'bus.db'}"
        settings = ProvisioningSettings(
            environment="test", data_dir=data_dir, bus_url=bus_url, auth_public_key_file=public,
            auth_private_key_file=private, database_url=f"sqlite+aiosqlite:///{data_dir / 'provisioning.db'}",
            hash_workers=workers, initial_password_time_cost=time_cost, initial_password_memory_kib=memory_kib,
            issue_chunk_size=chunk, log_level="WARNING")
        token = TokenSigner(load_private_key(private), issuer=settings.auth_issuer, audience=settings.auth_audience,
                            ttl_seconds=3600).sign(Principal(account_id=str(uuid.uuid4()), username="bench",
                                                             name="Sở (bench)", role=Role.CITY_DIC, jurisdiction="79"))
        headers = {"authorization": f"Bearer {token}"}
        app = create_app(settings)
        batch = make_units(units)
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
                started = time.perf_counter()
                batch_id = await forward(data_dir, bus_url, batch)
                while True:
                    rows = (await client.get("/api/batches", headers=headers)).json()
                    if rows and rows[0]["pending"] == units:
                        break
                    await asyncio.sleep(0.2)
                received = time.perf_counter() - started

                started = time.perf_counter()
                job = (await client.post(f"/api/batches/{batch_id}/issue", headers=headers)).json()
                polls, poll_times = 0, []
                while True:
                    t = time.perf_counter()
                    state = (await client.get(f"/api/jobs/{job['id']}", headers=headers)).json()
                    poll_times.append(time.perf_counter() - t)
                    polls += 1
                    if state["status"] in ("done", "failed"):
                        break
                    await asyncio.sleep(1.0)
                issued = time.perf_counter() - started
                venues = sum(u.venue_count for u in batch)
                # Every event out of the outbox and on the bus.
                from sqlalchemy import func, select

                from libs.common.outbox import outbox

                while True:
                    async with runtime.database.transaction(readonly=True) as session:
                        backlog = (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
                    if backlog == 0:
                        break
                    await asyncio.sleep(0.2)
                relayed = time.perf_counter() - started
    return {"units": units, "venues": venues, "workers": workers, "params": f"t={time_cost}, {memory_kib // 1024} MiB",
            "received": received, "issued": issued, "relayed": relayed, "status": state["status"],
            "done": state["done"], "failed": state["failed"], "poll_ms": 1000 * statistics.median(poll_times),
            "polls": polls}


def hash_cost(time_cost: int | None, memory_kib: int | None, samples: int = 20) -> float:
    hasher = PasswordHasher() if time_cost is None else PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                                                        parallelism=1)
    started = time.perf_counter()
    for _ in range(samples):
        hasher.hash("k7m2p-9qxzr-abcde-fghjk")
    return (time.perf_counter() - started) / samples * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="hashing processes")
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--time-cost", type=int, default=1)
    parser.add_argument("--memory-kib", type=int, default=12288)
    parser.add_argument("--compare-default", type=int, default=0, metavar="UNITS",
                        help="also issue UNITS units with argon2-cffi's default cost (t=3, 64 MiB, p=4)")
    args = parser.parse_args(argv)

    print(f"argon2id per hash, one process: initial cost (t={args.time_cost}, {args.memory_kib // 1024} MiB, p=1) "
          f"{hash_cost(args.time_cost, args.memory_kib):.1f} ms; default cost (t=3, 64 MiB, p=4) "
          f"{hash_cost(None, None, 5):.1f} ms", file=sys.stderr)
    results = [asyncio.run(run(args.units, args.workers, args.time_cost, args.memory_kib, args.chunk))]
    if args.compare_default:
        results.append(asyncio.run(run(args.compare_default, args.workers, 3, 65536, args.chunk)))
    print()
    print("| units (venues) | argon2id cost | hashing processes | batch received | issued (job done) "
          "| units/s | 10,000 units at this rate | all events on the bus | progress poll (median) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rate = r["done"] / r["issued"] if r["issued"] else 0
        print(f"| {r['units']:,} ({r['venues']:,}) | {r['params']} | {r['workers']} | {r['received']:.1f} s "
              f"| {r['issued']:.1f} s | {rate:.0f} | {10_000 / rate:.0f} s | {r['relayed']:.1f} s "
              f"| {r['poll_ms']:.0f} ms |" if rate else f"| {r['units']} | {r['params']} | failed |")
    print()
    ok = all(r["status"] == "done" and r["failed"] == 0 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
