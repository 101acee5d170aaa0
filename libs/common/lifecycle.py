"""Cooperative stop of the background loops (relay, consumer, workers).

Cancelling a task while it is inside a database call (aiosqlite runs it on a thread) or a
Kafka request can hang the shutdown or leave a step half done. So a loop is told to stop
instead: it checks ``stopping`` between units of work (a relay batch, a consumer batch, a
worker iteration) and waits with ``pause`` rather than ``asyncio.sleep``, so that an idle
loop stops at once. The composition root sets the signal, waits up to a grace period
(``KHAIBAO_SHUTDOWN_GRACE_SECONDS``) and cancels only what is still running.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)

# How long stop_tasks waits for the loops it had to cancel after the grace.
CANCELLED_WAIT_SECONDS = 5.0


async def pause(stopping: asyncio.Event | None, seconds: float, *wake: asyncio.Event) -> bool:
    """Wait ``seconds``, or less if ``stopping`` or one of ``wake`` is set; True when stopping.

    Only events are awaited here, so the wait itself is safe to cancel.
    """
    if stopping is not None and stopping.is_set():
        return True
    events = [e for e in (stopping, *wake) if e is not None]
    if not events:  # nothing can end the wait early
        await asyncio.sleep(seconds)
    elif len(events) == 1:
        try:
            await asyncio.wait_for(events[0].wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
    else:
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
    return stopping is not None and stopping.is_set()


async def stop_tasks(tasks: Mapping[str, asyncio.Task], stopping: asyncio.Event, grace: float) -> list[str]:
    """Set ``stopping``, let the loops finish their unit of work for up to ``grace`` seconds,
    then cancel the ones still running (a warning names each); the names cancelled."""
    stopping.set()
    if not tasks:
        return []
    _, pending = await asyncio.wait(list(tasks.values()), timeout=grace)
    late = [name for name, task in tasks.items() if task in pending]
    for name in late:
        log.warning("%s did not stop within %.1fs of the shutdown signal; cancelling it", name, grace)
        tasks[name].cancel()
    if pending:
        # A task cancelled inside a driver call may never answer: do not hang the shutdown on it.
        _, stuck = await asyncio.wait(pending, timeout=CANCELLED_WAIT_SECONDS)
        for name, task in tasks.items():
            if task in stuck:
                log.error("%s did not finish after being cancelled; leaving it", name)
    for task in tasks.values():
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("%s ended with an error at shutdown: %r", name_of(tasks, task), task.exception())
    return late


def name_of(tasks: Mapping[str, asyncio.Task], task: asyncio.Task) -> str:
    return next((name for name, t in tasks.items() if t is task), "task")
