"""How long after a sign-out each service refuses the ended session (libs/common/sessions.py).

    python -m bench.sessions_end [--runs 10] [--kafka]

The five real apps in-process with the demo accounts, on SQLite + the embedded bus, or
with ``--kafka`` on PostgreSQL + Kafka (KHAIBAO_TEST_POSTGRES_URL and
KHAIBAO_TEST_KAFKA_BOOTSTRAP). After a warm-up sign-out, each run signs a commune focal
point in, opens every console, signs out, and polls each service's console page every
20 ms until it sends the old cookie to the sign-in page. Prints a Markdown table: median
and maximum seconds per service. The requirement is 5 s; the test with that deadline is
tests/reliability/test_sessions_end.py.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from libs.common.settings import SERVICES
from tests.conftest import Backend
from tests.reliability.test_sessions_end import (
    COMMUNE_USER, CONSOLE_HOME, _consoles, _page, _signin_cookie, _signout,
)
from tests.services.conftest import build_settings, make_keys, run_services


async def one_run(system) -> dict[str, float]:  # noqa: ANN001 - RunningServices
    cookie = await _signin_cookie(system, COMMUNE_USER)
    assert await _consoles(system, cookie) == {s: 200 for s in SERVICES}
    await _signout(system, cookie)
    ended = time.monotonic()
    waited: dict[str, float] = {}
    while len(waited) < len(SERVICES):
        if time.monotonic() - ended > 60:
            raise RuntimeError(f"not refused within 60 s by {sorted(set(SERVICES) - set(waited))}")
        for service in SERVICES:
            if service not in waited and await _page(system, service, CONSOLE_HOME[service], cookie) == 401:
                waited[service] = time.monotonic() - ended
        await asyncio.sleep(0.02)
    return waited


async def measure(runs: int, kafka: bool) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        keys = make_keys(tmp_path / "data")
        if kafka:
            backend = Backend("kafka", tmp_path, f"kafka://{os.environ['KHAIBAO_TEST_KAFKA_BOOTSTRAP']}",
                              f"b{uuid.uuid4().hex[:8]}.", admin_url=os.environ["KHAIBAO_TEST_POSTGRES_URL"])
        else:
            backend = Backend("embedded", tmp_path, f"embedded://{tmp_path / 'bus.db'}", "")
        try:
            settings = {s: build_settings(s, keys, database_url=await backend.database_url(s), bus_url=backend.bus_url,
                                          bus_namespace=backend.bus_options().get("namespace", ""),
                                          demo=s == "provisioning", log_level="WARNING") for s in SERVICES}
            async with run_services(settings) as system:
                await one_run(system)  # warm-up: consumer groups join
                results: dict[str, list[float]] = {s: [] for s in SERVICES}
                for _ in range(runs):
                    for service, seconds in (await one_run(system)).items():
                        results[service].append(seconds)
                return results
        finally:
            await backend.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--kafka", action="store_true", help="PostgreSQL + Kafka instead of SQLite + embedded bus")
    args = parser.parse_args()
    results = asyncio.run(measure(args.runs, args.kafka))
    print(f"| service | median (s) | max (s) | runs |  ({'PostgreSQL + Kafka' if args.kafka else 'SQLite + embedded bus'})")
    print("|---|---:|---:|---:|")
    for service, values in results.items():
        print(f"| {service} | {statistics.median(values):.2f} | {max(values):.2f} | {len(values)} |")


if __name__ == "__main__":
    main()
