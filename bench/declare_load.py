"""A lean HTTP/1.1 load generator for bench/declare.py (its own process, uvloop, raw sockets).

httpx spends more CPU per request than the server under test, which would make the client
the bottleneck on a 2-core machine; this one sends pre-built requests on keep-alive
connections and parses only the status line, Content-Length and the body. Closed loop:
each connection sends its next request when the previous answer has arrived, for
``duration`` seconds or ``count`` requests, whichever comes first. With ``--rate`` the
connections share a schedule of that many requests per second (a fixed load, to compare
the CPU each declaration costs between two versions on a machine that others share). Latencies are measured
from the first byte written to the last byte read, only after ``warmup`` seconds.

Command line (used by bench/declare.py; the result is one JSON object on stdout)::

    python -m bench.declare_load --port 8103 --path /api/declarations --bodies FILE \\
        --connections 64 --duration 20 --warmup 3 --count 200000 --ids-out FILE
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from array import array
from pathlib import Path

KEY_MARK = b"@@KEY@@"


class Stats:
    def __init__(self) -> None:
        self.latencies = array("d")
        self.starts = array("d")
        self.statuses: dict[int, int] = {}
        self.ok = 0
        self.errors = 0
        self.sent = 0
        self.measured_ok = 0
        self.ids: list[str] = []


def addresses(text: str) -> list[str]:
    """"127.0.0.10-127.0.0.109" or "127.0.0.2,127.0.0.3": the client addresses to bind."""
    found: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        if not last:
            found.append(first)
            continue
        stem, start = first.rsplit(".", 1)
        found += [f"{stem}.{n}" for n in range(int(start), int(last.rsplit(".", 1)[1]) + 1)]
    return found


async def connection(host: str, port: int, path: str, bodies: list[bytes], offset: int, stats: Stats,
                     state: dict, keep_ids: bool, local: str | None = None) -> None:
    bind = {"local_addr": (local, 0)} if local else {}
    reader, writer = await asyncio.open_connection(host, port, **bind)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\n").encode()
    index = offset
    try:
        while not state["stop"]:
            if state["remaining"] <= 0:
                return
            state["remaining"] -= 1
            if state["interval"]:  # paced: the next free slot of the shared schedule, never a burst
                now = time.perf_counter()
                slot = max(state["next"], now)
                state["next"] = slot + state["interval"]
                if slot > now:
                    await asyncio.sleep(slot - now)
                if state["stop"]:
                    return
            template = bodies[index % len(bodies)]
            index += 1
            body = template.replace(KEY_MARK, uuid.uuid4().hex.encode(), 1)
            request = head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            started = time.perf_counter()
            writer.write(request)
            stats.sent += 1
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("server closed the connection")
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            close = False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value.strip())
                elif lowered == b"connection" and value.strip().lower() == b"close":
                    close = True
            payload = await reader.readexactly(length) if length else b""
            finished = time.perf_counter()
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                stats.ok += 1
                if keep_ids:
                    for item in json.loads(payload)["declarations"]:
                        stats.ids.append(item["id"])
            else:
                stats.errors += 1
            if started >= state["measure_from"]:
                stats.latencies.append(finished - started)
                stats.starts.append(started)
                if 200 <= status < 300:
                    stats.measured_ok += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port, **bind)
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> dict:
    bodies = [line.encode() for line in Path(args.bodies).read_text(encoding="utf-8").splitlines() if line]
    stats = Stats()
    started = time.perf_counter()
    state = {"stop": False, "remaining": args.count, "measure_from": started + args.warmup,
             "interval": 1.0 / args.rate if args.rate else 0.0, "next": started}
    local = addresses(args.local_addresses)
    tasks = [asyncio.create_task(connection(args.host, args.port, args.path, bodies, i * 997, stats, state,
                                            bool(args.ids_out), local[i % len(local)] if local else None))
             for i in range(args.connections)]

    async def stopper() -> None:
        await asyncio.sleep(args.duration)
        state["stop"] = True

    stop_task = asyncio.create_task(stopper())
    results = await asyncio.gather(*tasks, return_exceptions=True)
    ended = time.perf_counter()
    stop_task.cancel()
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    measured_seconds = max(1e-9, ended - state["measure_from"])
    latencies = sorted(stats.latencies)

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    if args.ids_out:
        Path(args.ids_out).write_text("\n".join(stats.ids), encoding="utf-8")
    if args.latencies_out:  # "<sent at, s from the start> <latency, s>" a line (bench/flood.py pools them)
        Path(args.latencies_out).write_text("\n".join(
            f"{at - started:.4f} {x:.6f}" for at, x in zip(stats.starts, stats.latencies)), encoding="utf-8")
    return {
        "sent": stats.sent, "ok": stats.ok, "errors": stats.errors, "statuses": stats.statuses,
        "rate": stats.measured_ok / measured_seconds, "seconds": ended - started,
        "p50": pct(0.50), "p99": pct(0.99), "max": pct(1.0), "connection_failures": failures[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/declarations")
    parser.add_argument("--bodies", required=True, help="a file of JSON bodies, one a line, with @@KEY@@ once")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--ids-out", default="")
    parser.add_argument("--latencies-out", default="", help="write the measured latencies (s) to this file")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offer at most this many requests per second in all (0: as fast as answered)")
    parser.add_argument("--local-addresses", default="",
                        help="bind the connections to these loopback addresses in turn "
                             "(127.0.0.10-127.0.0.109, or a comma-separated list): many simulated clients")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
