"""Cooperative shutdown of a service app's background loops (libs/common/lifecycle.py).

A real service app (the composition root's lifespan: migrations, bus, outbox relay, event
consumer, workers) on real engines: it is stopped while its relay and consumer are busy,
while idle, and with a worker that ignores the stop signal.
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from libs.common.app import ServiceDefinition, create_service_app
from libs.common.lifecycle import pause, stop_tasks
from libs.common.runtime import Runtime
from libs.common.settings import SERVICES, ServiceSettings
from tests.platform.support import (
    RECORDED, accept_item, accepted_ids, apply_effect, applied_ids, create_schema, duplicates, effects,
    outbox_count, scalar,
)
from tests.services.conftest import build_settings, create_app, make_keys

# Any service's migrations give the common tables (outbox, processed_events); the test's
# own tables are created on startup.
MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "reporting" / "migrations"


async def _slow_effect(session, event) -> None:  # noqa: ANN001
    await apply_effect(session, event)
    await asyncio.sleep(0.005)  # a handler with some work: the consumer is busy when the stop comes


async def _create_test_tables(runtime: Runtime) -> None:
    await create_schema(runtime.database)


def make_app(database_url: str, bus_url: str, tmp: Path, *, grace: float = 10.0, workers=(),  # noqa: ANN001
             namespace: str = "", batch: int = 20, handler=_slow_effect):
    settings = ServiceSettings(
        service_name="reporting", environment="test", data_dir=tmp, database_url=database_url, bus_url=bus_url,
        bus_namespace=namespace, sqlite_synchronous="NORMAL", relay_batch_size=batch, relay_poll_interval=0.05,
        consumer_batch_size=batch, shutdown_grace_seconds=grace,
    )
    return create_service_app(ServiceDefinition(
        settings=settings, migrations=MIGRATIONS, handlers={RECORDED: handler},
        on_startup=_create_test_tables, workers=workers,
    ))


class Warnings(logging.Handler):
    """The lifecycle's warnings (the app's JSON logging does not propagate to caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings():
    handler = Warnings()
    logger = logging.getLogger("libs.common.lifecycle")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


async def _timed_exit(context) -> float:  # noqa: ANN001
    started = time.monotonic()
    await context.__aexit__(None, None, None)
    return time.monotonic() - started


@asynccontextmanager
async def _restarted(database_url: str, backend, tmp: Path, expected: int, timeout: float):  # noqa: ANN001
    """The app started again on the same database: its database once ``expected`` events
    are applied (what the stopped app left is handled now)."""
    app = make_app(database_url, backend.bus_url, tmp, namespace=backend.namespace)
    async with app.router.lifespan_context(app):
        database = app.state.runtime.database
        deadline = time.monotonic() + timeout
        while len(applied := await applied_ids(database)) < expected:
            assert time.monotonic() < deadline, f"only {len(applied)} of {expected} applied"
            await asyncio.sleep(0.05)
        yield database


async def test_an_idle_app_stops_in_well_under_a_second(backend, tmp_path, warnings) -> None:
    app = make_app(await backend.database_url("idle"), backend.bus_url, tmp_path, namespace=backend.namespace)
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    await asyncio.sleep(1.0)  # relay, consumer and the reporting-free workers are all waiting
    elapsed = await _timed_exit(context)
    assert elapsed < 1.0, f"an idle app took {elapsed:.2f}s to stop"
    assert not warnings


async def test_a_busy_app_stops_within_the_grace_and_loses_nothing(backend, tmp_path, warnings) -> None:
    database_url = await backend.database_url("busy")
    app = make_app(database_url, backend.bus_url, tmp_path, grace=8.0, namespace=backend.namespace)
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    database = app.state.runtime.database
    total = 600
    for start in range(0, total, 100):  # the relay and the consumer start on the first rows at once
        for i in range(start, start + 100):
            await accept_item(database, f"item-{i:04d}", i)
    # Stop while both loops are in the middle of the stream.
    deadline = time.monotonic() + 30
    while await scalar(database, select(func.count()).select_from(effects)) < 40:
        assert time.monotonic() < deadline, "the consumer never started"
        await asyncio.sleep(0.02)
    assert len(await applied_ids(database)) < total  # stopped in the middle of the stream
    elapsed = await _timed_exit(context)
    assert elapsed < 8.0, f"the busy app took {elapsed:.2f}s to stop"
    assert not warnings, "a loop had to be cancelled"

    # What was done stays done, what was not is still waiting (outbox rows or uncommitted
    # offsets): a second run finishes it, each event applied exactly once.
    async with _restarted(database_url, backend, tmp_path, total, 60) as database:
        applied = await applied_ids(database)
        assert duplicates(applied) == 0
        assert sorted(applied) == sorted(await accepted_ids(database))
        assert await outbox_count(database) == 0


async def test_a_consumer_waiting_out_an_outage_stops_at_once_and_its_event_comes_again(
        backend, tmp_path, warnings) -> None:
    """A handler that cannot reach what it needs (a transient error) is retried with a
    growing wait; the stop signal ends that wait, and the event, not committed, is handled
    when the service is back."""
    attempts: list[float] = []

    async def unreachable(session, event) -> None:  # noqa: ANN001
        attempts.append(time.monotonic())
        raise ConnectionError("the database is restarting")

    database_url = await backend.database_url("outage")
    app = make_app(database_url, backend.bus_url, tmp_path, grace=5.0, namespace=backend.namespace,
                   handler=unreachable)
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    item = await accept_item(app.state.runtime.database, "during-the-outage", 1)
    deadline = time.monotonic() + 30
    while len(attempts) < 4:  # retried after 0.2, 0.4 and 0.8 s: now waiting 1.6 s
        assert time.monotonic() < deadline, f"{len(attempts)} attempts"
        await asyncio.sleep(0.05)
    elapsed = await _timed_exit(context)
    assert elapsed < 2.5, f"the app took {elapsed:.2f}s to stop"  # not the 5 s grace
    assert not warnings, "the consumer had to be cancelled"

    async with _restarted(database_url, backend, tmp_path, 1, 30) as database:
        assert await applied_ids(database) == [str(item.id)]


async def test_a_worker_that_ignores_the_signal_is_cancelled_after_the_grace(tmp_path, warnings) -> None:
    iterations = []

    async def stubborn(runtime: Runtime) -> None:
        while True:  # never looks at runtime.stopping
            iterations.append(time.monotonic())
            await asyncio.sleep(0.05)

    async def polite(runtime: Runtime) -> None:
        while not runtime.stopping.is_set():
            iterations.append(time.monotonic())
            await runtime.pause(30)

    app = make_app(f"sqlite+aiosqlite:///{tmp_path / 'stubborn.db'}", f"embedded://{tmp_path / 'bus.db'}",
                   tmp_path, grace=0.6, workers=[("stubborn test worker", stubborn), ("polite test worker", polite)])
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    await asyncio.sleep(0.3)
    elapsed = await _timed_exit(context)
    assert 0.6 <= elapsed < 2.5, elapsed
    assert any("stubborn test worker" in w and "cancelling" in w for w in warnings), warnings
    assert not any("polite test worker" in w for w in warnings), warnings
    assert not any("outbox relay" in w or "event consumer" in w for w in warnings), warnings


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_with_its_workers_stops_at_once_when_idle(service, tmp_path, warnings) -> None:
    """The real apps: relay, consumer and every worker of the service (retention, delivery,
    alert dispatch, issuing, reports, intake's imports and replies) wait on the stop signal."""
    keys = make_keys(tmp_path / "data")
    settings = build_settings(service, keys)
    app = create_app(service, settings)
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    await asyncio.sleep(0.8)  # every loop has done its first pass and is waiting
    elapsed = await _timed_exit(context)
    assert elapsed < 1.0, f"{service} took {elapsed:.2f}s to stop"
    assert not warnings


async def test_pause_ends_on_the_stop_signal_or_a_wake_event_and_otherwise_sleeps() -> None:
    stopping, wake = asyncio.Event(), asyncio.Event()
    started = time.monotonic()
    assert await pause(None, 0.05) is False  # neither signal nor event: a plain sleep
    assert await pause(stopping, 0.05) is False
    assert time.monotonic() - started >= 0.1
    asyncio.get_running_loop().call_later(0.05, wake.set)
    started = time.monotonic()
    assert await pause(stopping, 30, wake) is False  # woken for new work
    asyncio.get_running_loop().call_later(0.05, stopping.set)
    assert await pause(stopping, 30, asyncio.Event()) is True  # told to stop
    assert await pause(stopping, 30) is True  # already stopping: at once
    assert time.monotonic() - started < 1


async def test_stop_tasks_waits_for_the_polite_and_cancels_the_stubborn(warnings) -> None:
    stopping = asyncio.Event()
    finished = []

    async def polite() -> None:
        while not stopping.is_set():
            await pause(stopping, 30)
        await asyncio.sleep(0.1)  # the end of its unit of work
        finished.append("polite")

    async def stubborn() -> None:
        await asyncio.sleep(30)

    tasks = {"polite loop": asyncio.create_task(polite()), "stubborn loop": asyncio.create_task(stubborn())}
    await asyncio.sleep(0.05)
    assert await stop_tasks(tasks, stopping, grace=0.5) == ["stubborn loop"]
    assert finished == ["polite"] and tasks["stubborn loop"].cancelled()
    assert len(warnings) == 1 and "stubborn loop" in warnings[0]
