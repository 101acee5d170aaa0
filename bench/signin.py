"""Parallel unknown-user sign-ins against a real provisioning: does the service stay responsive?

    python -m bench.signin                           # concurrencies 10 30 60 120, 6 s each
    python -m bench.signin --concurrency 60 --duration 10

The real provisioning service runs as ``khaibao serve provisioning --workers 1`` on
127.0.0.1 (SQLite, embedded bus, development mode, the demo accounts), its argon2 work in
the bounded pool of services/provisioning/signins/hashing.py with the default settings of this
machine (2 x cores threads, as many waiting, 2 per client address). What the bench turns
off, to measure the pool rather than the defences in front of it: the per-address rate
limits (KHAIBAO_RATE_LIMIT_ENABLED=false) and the throttle's per-address delays (every
guesser uses a new unknown user name each time, and the address counts are set out of
reach), so every attempt is hashed or refused for want of room.

For each concurrency N: N guessers, each from its own loopback address (127.0.1.x; then
--one-address: N guessers from one address, as in the issue), send
unknown-user sign-ins (POST /api/token) one after the other for --duration seconds (from a
process of their own, niced: they stand for clients elsewhere); meanwhile
a probe reads /healthz every 20 ms and an official signs in with the right password every
0.5 s from an address of its own. The table: attempts answered 401 (hashed) and 503 (no
room), the guessers' latency p50/p99, the 503s' p99, /healthz p99, and the real sign-ins'
latency (p50, max) with how many were refused for want of room.
Everything stays on loopback; every loop is bounded in time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.declare import free_port
from bench.server import REPO, start_service, stop_server
from libs.common.demo import DEMO_PASSWORD

OFFICIAL = "ttyt.cangio"


def start(data_dir: Path, port: int, log: Path, extra: dict[str, str]) -> subprocess.Popen:
    return start_service("provisioning", port, data_dir=data_dir, log=log, workers=1, settings={
        "KHAIBAO_DEMO": "true", "KHAIBAO_BUS_URL": f"embedded://{data_dir / 'bus.db'}",
        "KHAIBAO_PROVISIONING_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'provisioning.db'}",
        "KHAIBAO_PROVISIONING_SIGNIN_ADDRESS_FREE_FAILURES": "1000000000", **extra})


def client(port: int, address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}", timeout=30)


def pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def guessers(port: int, concurrency: int, addresses: int, duration: float) -> None:
    """The guessers' side (its own niced process): prints their latencies as JSON."""
    answered: list[float] = []
    busy: list[float] = []
    deadline = time.monotonic() + duration

    async def guesser(i: int) -> None:
        async with client(port, f"127.0.1.{i % addresses + 1}") as c:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                started = time.perf_counter()
                r = await c.post("/api/token", json={"username": f"khong.ai.{i}.{n}", "password": "doan-mat-khau"})
                (busy if r.status_code == 503 else answered).append(time.perf_counter() - started)
                if r.status_code == 503:
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")) / 10)  # an impatient client

    await asyncio.gather(*[guesser(i) for i in range(concurrency)])
    print(json.dumps({"answered": answered, "busy": busy}))


async def one_level(port: int, concurrency: int, addresses: int, duration: float) -> dict:
    health: list[float] = []
    real: list[float] = []
    real_busy = 0
    # The guessers stand for clients elsewhere: their own process, niced, so that the load
    # generator's CPU does not pass for the server's.
    load = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.signin", "--guessers", str(concurrency), "--addresses", str(addresses),
        "--port", str(port), "--duration", str(duration), cwd=REPO, stdout=asyncio.subprocess.PIPE, preexec_fn=lambda: os.nice(10))
    await asyncio.sleep(0.5)  # its clients are connecting
    deadline = time.monotonic() + duration - 0.5

    async def probe() -> None:
        async with client(port, "127.0.0.20") as c:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                await c.get("/healthz")
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

    async def official() -> None:
        nonlocal real_busy
        async with client(port, "127.0.0.10") as c:
            await asyncio.sleep(0.3)
            while time.monotonic() < deadline:
                started = time.perf_counter()
                r = await c.post("/api/token", json={"username": OFFICIAL, "password": DEMO_PASSWORD})
                if r.status_code == 200:
                    real.append(time.perf_counter() - started)
                elif r.status_code == 503:
                    real_busy += 1
                await asyncio.sleep(0.5)

    await asyncio.gather(probe(), official())
    out, _ = await asyncio.wait_for(load.communicate(), timeout=duration + 60)
    figures = json.loads(out.decode().strip().splitlines()[-1])
    answered, busy = figures["answered"], figures["busy"]
    return {"concurrency": concurrency, "addresses": addresses, "load": os.getloadavg()[0], "answered": len(answered), "busy": len(busy),
            "p50": pct(answered, 0.5), "p99": pct(answered, 0.99), "busy_p99": pct(busy, 0.99),
            "health_p99": pct(health, 0.99), "real_p50": pct(real, 0.5), "real_max": max(real, default=float("nan")),
            "real_ok": len(real), "real_busy": real_busy}


def print_table(rows: list[dict], duration: float) -> None:
    print(f"\n{platform.node()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, {duration:.0f} s per row, "
          "one provisioning worker")
    print("| parallel unknown-user sign-ins (addresses) | answered 401 (hashed) | 503 (no room) | sign-in p50 / p99 "
          "| 503 p99 | /healthz p99 | real sign-in p50 / max (refused 503) | load average |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['concurrency']} ({r['addresses']}) | {r['answered']} | {r['busy']} | {r['p50'] * 1000:.0f} / {r['p99'] * 1000:.0f} ms "
              f"| {r['busy_p99'] * 1000:.1f} ms | {r['health_p99'] * 1000:.1f} ms "
              f"| {r['real_p50'] * 1000:.0f} / {r['real_max'] * 1000:.0f} ms ({r['real_busy']} of "
              f"{r['real_ok'] + r['real_busy']}) | {r['load']:.1f} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 30, 60, 120])
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--one-address", type=int, nargs="*", default=[60],
                        help="also these many guessers from a single address (the issue's attacker)")
    parser.add_argument("--server-env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="settings for the server, e.g. KHAIBAO_PROVISIONING_SIGNIN_HASH_THREADS=2")
    parser.add_argument("--guessers", type=int, help=argparse.SUPPRESS)  # the load process
    parser.add_argument("--addresses", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.guessers:
        await guessers(args.port, args.guessers, args.addresses, args.duration)
        return
    if max(args.concurrency) > 250:
        parser.error("at most 250 guessers (one loopback address each)")
    with tempfile.TemporaryDirectory(prefix="khaibao-signin-") as tmp:
        work = Path(tmp)
        port = free_port()
        extra = dict(item.split("=", 1) for item in args.server_env)
        process = start(work, port, work / "server.log", extra)
        try:
            rows = [await one_level(port, n, n, args.duration) for n in args.concurrency]
            rows += [await one_level(port, n, 1, args.duration) for n in args.one_address]
        finally:
            stop_server(process)
    print_table(rows, args.duration)


if __name__ == "__main__":
    asyncio.run(main())
