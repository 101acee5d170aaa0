"""From a declaration's submit to its alert in the health officer's console: p50 / p99.

    python -m bench.alerts                           # embedded mode (SQLite + embedded bus)
    KHAIBAO_TEST_POSTGRES_URL=postgresql://u:p@127.0.0.1:5432/postgres \\
    KHAIBAO_TEST_KAFKA_BOOTSTRAP=127.0.0.1:9092 python -m bench.alerts --only kafka
    python -m bench.alerts --count 300 --rate 5 --background 20

The real path, as separate processes: the declaration service and the notification
service run under uvicorn (``khaibao serve``) on the backend; the declaration service
knows the venues (seeded in its database as its venue copy would hold them). The bench
POSTs one red declaration (fever and cough) at a time to ``/api/declarations`` at
``--rate`` per second, optionally among ``--background`` green declarations per second,
and two pollers read the district health officer's ``/api/alerts?after=...`` (signed
token, jurisdiction = the venue's district), as the console does:

- ``feed``: polled every 20 ms: when the alert is visible to the console at all;
- ``console``: polled every ``--console-ms`` (the inbox script's default, 500 ms): when the
  open inbox page shows it (what an officer sees without reloading).

A warm-up sends red declarations until a first alert came through (the consumers joined
their groups); they are not counted. Latency runs from just before the POST to the poll that first returned the alert. Every
red declaration must make exactly one alert (``missing`` counts those that never came).
The machine is shared: figures are noisy.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from bench.declare import free_port, person, pg_database, seed
from bench.server import start_service, stop_server
from libs.common.auth import Principal, Role, TokenSigner, generate_key_pair, load_private_key

DISTRICT = "79/787"


@dataclass
class Target:
    name: str
    bus_url: str
    namespace: str
    data_dir: Path
    declaration_db: str
    notification_db: str
    venue_codes: list[str] | None = None


def start(service: str, target: Target, port: int, env_extra: dict[str, str]) -> subprocess.Popen:
    # One load generator on one address: the per-address limits are not measured here (off).
    return start_service(service, port, data_dir=target.data_dir, log=target.data_dir / f"{service}.log",
                         ready_timeout=90, settings={"KHAIBAO_BUS_URL": target.bus_url,
                                                     "KHAIBAO_BUS_NAMESPACE": target.namespace, **env_extra})


def officer_token(data_dir: Path) -> str:
    private, public = data_dir / "keys" / "token-private.pem", data_dir / "keys" / "token-public.pem"
    if not private.exists():
        generate_key_pair(private, public)
    signer = TokenSigner(load_private_key(private), issuer="khaibao-provisioning", audience="khaibao",
                         ttl_seconds=3600)
    return signer.sign(Principal(account_id=str(uuid.uuid4()), username="bench.ttyt", name="Bench TTYT",
                                 role=Role.HEALTH_OFFICER, jurisdiction=DISTRICT))


async def measure(target: Target, args: argparse.Namespace) -> dict:
    decl_port, notif_port = free_port(), free_port()
    generate = officer_token(target.data_dir)
    declaration = start("declaration", target, decl_port, {"KHAIBAO_DECLARATION_DATABASE_URL": target.declaration_db})
    notification = start("notification", target, notif_port,
                         {"KHAIBAO_NOTIFICATION_DATABASE_URL": target.notification_db,
                          # Each red must make its own alert to be timed: no burst (README "Alert storms").
                          "KHAIBAO_NOTIFICATION_ALERT_BURST_THRESHOLD": "1000000"})
    rng = random.Random(6)
    submitted: dict[str, float] = {}
    seen: dict[str, dict[str, float]] = {"feed": {}, "console": {}}
    stage: dict[str, float] = {}  # from the declaration's stored time to the alert's creation (s)
    done = asyncio.Event()
    headers = {"authorization": f"Bearer {generate}"}
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            async def poller(kind: str, every: float) -> None:
                after = None
                while not done.is_set():
                    params = {"after": after} if after else {}
                    response = await client.get(f"http://127.0.0.1:{notif_port}/api/alerts", headers=headers,
                                                params={**params, "limit": 500})
                    now = time.perf_counter()
                    if response.status_code == 200:
                        for row in response.json():
                            seen[kind].setdefault(row["source_id"], now)
                            stage[row["source_id"]] = (datetime.fromisoformat(row["received_at"])
                                                       - datetime.fromisoformat(row["raised_at"])).total_seconds()
                            after = max(after or row["received_at"], row["received_at"])
                    await asyncio.sleep(every)

            async def declare(sick: bool) -> None:
                body = person(rng)
                body["symptoms"] = ["fever", "cough"] if sick else []
                body["exposures"] = []
                payload = {"venue_code": rng.choice(target.venue_codes), "people": [body], "consent": True,
                           "idempotency_key": uuid.uuid4().hex}
                started = time.perf_counter()
                response = await client.post(f"http://127.0.0.1:{decl_port}/api/declarations", json=payload)
                response.raise_for_status()
                if sick:
                    for item in response.json()["declarations"]:
                        assert item["result"] == "red", item
                        submitted[item["id"]] = started

            async def background() -> None:
                while not done.is_set() and args.background > 0:
                    asyncio.create_task(declare(False))
                    await asyncio.sleep(1 / args.background)

            tasks = [asyncio.create_task(poller("feed", 0.02)),
                     asyncio.create_task(poller("console", args.console_ms / 1000)),
                     asyncio.create_task(background())]
            # Warm-up: until a first alert went all the way (the consumer joined its group, topics
            # exist, connections are open); those are not counted.
            warm_deadline = time.monotonic() + 120
            while not any(i in seen["feed"] for i in submitted):
                if time.monotonic() > warm_deadline:
                    raise RuntimeError("no alert came through within 120 s")
                await declare(True)
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)
            submitted.clear()
            for _ in range(args.count):
                asyncio.create_task(declare(True))
                await asyncio.sleep(1 / args.rate)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(i in seen["console"] for i in submitted):
                await asyncio.sleep(0.2)
            done.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            check = await client.get(f"http://127.0.0.1:{notif_port}/api/alerts", headers=headers,
                                     params={"limit": 500})
            sources = [r["source_id"] for r in check.json()]
    finally:
        stop_server(declaration)
        stop_server(notification)
    result = {"backend": target.name, "n": len(submitted), "rate": args.rate, "background": args.background}
    for kind in ("feed", "console"):
        latencies = sorted((seen[kind][i] - t) * 1000 for i, t in submitted.items() if i in seen[kind])
        result[kind] = latencies
    result["handler"] = sorted(stage[i] * 1000 for i in submitted if i in stage)
    result["missing"] = sum(1 for i in submitted if i not in seen["feed"])
    result["duplicates"] = len(sources) - len(set(sources))
    return result


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def print_table(results: list[dict], console_ms: int) -> None:
    print("| backend | alerts | red/s (+ green/s) | to handler p50 / p99 ms | feed p50 ms | feed p99 ms | console p50 ms | console p99 ms "
          "| max ms | missing | duplicates |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['n']} | {r['rate']:g} (+{r['background']:g}) "
              f"| {pct(r['handler'], 50):.0f} / {pct(r['handler'], 99):.0f} | {pct(r['feed'], 50):.0f} "
              f"| {pct(r['feed'], 99):.0f} | {pct(r['console'], 50):.0f} | {pct(r['console'], 99):.0f} "
              f"| {max(r['console'] or [float('nan')]):.0f} | {r['missing']} | {r['duplicates']} |")
    print("\nto handler: from the declaration's submit time (as the declaration service stamped it) to the alert's "
          "creation in notification's consumer (both clocks are this machine's).")
    print(f"feed: the alert list polled every 20 ms; console: polled every {console_ms} ms as the inbox "
          "page's script does. From just before the POST of a red declaration to the first poll showing its alert.")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["embedded", "kafka"])
    parser.add_argument("--count", type=int, default=200, help="red declarations per backend")
    parser.add_argument("--rate", type=float, default=5, help="red declarations per second")
    parser.add_argument("--background", type=float, default=20, help="green declarations per second meanwhile")
    parser.add_argument("--console-ms", type=int, default=500)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="khaibao-bench-alerts-") as tmp:
        work = Path(tmp)
        if args.only in (None, "embedded"):
            data = work / "embedded"
            data.mkdir()
            target = Target("SQLite + embedded bus", f"embedded://{data / 'bus.db'}", "", data,
                            f"sqlite+aiosqlite:///{data / 'declaration.db'}",
                            f"sqlite+aiosqlite:///{data / 'notification.db'}")
            results.append(await run(target, args))
        pg, kafka = os.environ.get("KHAIBAO_TEST_POSTGRES_URL"), os.environ.get("KHAIBAO_TEST_KAFKA_BOOTSTRAP")
        if args.only in (None, "kafka"):
            if pg and kafka:
                data = work / "kafka"
                data.mkdir()
                target = Target("PostgreSQL + Kafka", f"kafka://{kafka}", f"bench{uuid.uuid4().hex[:6]}.", data,
                                await pg_database(pg), await pg_database(pg))
                results.append(await run(target, args))
            else:
                print("PostgreSQL + Kafka skipped: set KHAIBAO_TEST_POSTGRES_URL and KHAIBAO_TEST_KAFKA_BOOTSTRAP")
    print_table(results, args.console_ms)


async def run(target: Target, args: argparse.Namespace) -> dict:
    from bench.declare import Target as DeclareTarget

    seeded = DeclareTarget(target.name, target.declaration_db, target.bus_url, target.namespace, target.data_dir)
    await seed(seeded, venues=20)
    target.venue_codes = seeded.venue_codes
    return await measure(target, args)


if __name__ == "__main__":
    asyncio.run(main())
