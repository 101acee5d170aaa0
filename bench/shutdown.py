"""How long a service app takes to stop (the cooperative shutdown of libs/common/lifecycle.py).

    python -m bench.shutdown [--runs 5]

* idle: each of the five real apps (SQLite files and the embedded bus in a temporary
  directory, migrations, relay, consumer, every worker) started, left idle for a second,
  then stopped: the time the lifespan's exit takes;
* busy: a service app whose relay and consumer are in the middle of a stream of events
  (2000 queued at once, a handler that works 5 ms per event, batches of 20) stopped; the time the
  exit takes and how many events were applied before the stop (the rest are applied,
  once each, by the next start: see tests/platform/test_shutdown.py).

Prints a Markdown table (median and maximum over --runs). The grace period
(KHAIBAO_SHUTDOWN_GRACE_SECONDS, 10 s) bounds both; no loop is cancelled in either case.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from libs.common.outbox import publish
from libs.common.settings import SERVICES
from tests.platform.support import effects, items, recorded, scalar
from tests.platform.test_shutdown import make_app
from tests.services.conftest import build_settings, create_app, make_keys


async def idle_stop(service: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(service, build_settings(service, make_keys(Path(tmp) / "data")))
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        await asyncio.sleep(1.0)
        started = time.monotonic()
        await context.__aexit__(None, None, None)
        return time.monotonic() - started


async def busy_stop(total: int = 2000) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(f"sqlite+aiosqlite:///{Path(tmp) / 'busy.db'}", f"embedded://{Path(tmp) / 'bus.db'}",
                       Path(tmp))
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        database = app.state.runtime.database
        async with database.transaction() as session:  # the whole stream queued at once
            events = [recorded(f"item-{i:05d}", i) for i in range(total)]
            await session.execute(items.insert(), [
                {"item_id": e.data.item_id, "value": e.data.value, "event_id": str(e.id), "created_at": time.time()}
                for e in events])
            await publish(session, *events)
        while await scalar(database, select(func.count()).select_from(effects)) < 40:
            await asyncio.sleep(0.02)
        applied = await scalar(database, select(func.count()).select_from(effects))
        started = time.monotonic()
        await context.__aexit__(None, None, None)
        return time.monotonic() - started, applied


def _row(label: str, values: list[float], note: str = "") -> str:
    return (f"| {label} | {len(values)} | {statistics.median(values) * 1000:.0f} | {max(values) * 1000:.0f} "
            f"| {note} |")


async def main(runs: int) -> None:
    rows = []
    for service in SERVICES:
        rows.append(_row(f"{service}, idle", [await idle_stop(service) for _ in range(runs)]))
    busy = [await busy_stop() for _ in range(runs)]
    rows.append(_row("relay + consumer busy", [b[0] for b in busy],
                     f"stopped after ~{statistics.median(b[1] for b in busy):.0f} of 2000 events applied"))
    print("| app | runs | stop, median (ms) | stop, max (ms) | note |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
