"""Group commit: many requests' declarations written in one transaction.

A request validates and screens its declaration, then hands the rows (its submission,
its declarations, their outbox events) to the committer and waits. A writer task takes
everything waiting (up to ``max_rows`` declarations), writes it in ONE transaction
(writers.py: on PostgreSQL one statement; on SQLite ``executemany`` in a ``BEGIN
IMMEDIATE`` transaction) and only after the commit resolves each request's future. So
every answer 2xx is durable, and its events are in the outbox of the same transaction (no dual write). A writer that
is free takes what is there, so batches grow with the load and a lone request is written
at once; under load (its last batch held several requests) it first lingers a few
milliseconds (``linger``) for the requests on their way: every commit costs about the
same whatever its size, so fuller batches cost less CPU per declaration.

A key already stored (a double submit) is reported as a duplicate, and the request
answers with the first submission. A batch that fails on its data is retried one
request at a time, so one bad request cannot fail the others; a database that is down
fails the batch (the requests answer 503 and nothing was stored). Such a fallback costs
every request of the batch its share of one statement: it is counted
(``khaibao_declaration_batch_fallbacks_total``, ``fallbacks``); the text policy
(libs/common/text.py) keeps what a database cannot store (a NUL, a lone surrogate) from
ever reaching a writer.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence

from prometheus_client import Counter, Gauge, Histogram

from .writers import PostgresWriter, SqliteWriter, Work, seal_outbox

BATCH_ROWS = Histogram("khaibao_declaration_batch_rows", "Declarations written per group commit", ["service"],
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
STORED = Counter("khaibao_declarations_stored_total", "Declarations durably stored, by screening result",
                 ["service", "result"])
FALLBACKS = Counter("khaibao_declaration_batch_fallbacks_total",
                    "Group commits that failed on their data and were written again one request at a time",
                    ["service"])
WAITING = Gauge("khaibao_declaration_commit_queue", "Requests waiting for a group commit", ["service"],
                multiprocess_mode="max")

log = logging.getLogger(__name__)

class Overloaded(RuntimeError):
    """Too many requests are waiting for the database: answer 503, try again shortly."""


class StoreUnavailable(RuntimeError):
    """The database did not take the batch: nothing of this request was stored."""


class RelayNudge:
    """Wakes this process's outbox relay once enough events wait, or soon for an alert.

    Woken after every commit, the relay would run a claim-publish-delete cycle for a
    handful of rows each time; left to its poll interval (or woken per ``every`` events)
    it moves them in batches, for a fraction of the CPU. A batch holding a red
    declaration (``declaration.flagged``) wakes it at once, but at most once per
    ``urgent_gap`` seconds: with one declaration in twenty red, most group commits hold
    one, and a relay cycle per commit (four database round trips and a produce request)
    cost more than the relay's whole per-event work. A red declaration committed within
    the gap of the last wake is relayed when the gap ends (a timer, never later).
    """

    def __init__(self, wake: asyncio.Event, every: int, urgent_gap: float = 0.0) -> None:
        self.wake = wake
        self.every = every
        self.urgent_gap = urgent_gap
        self.waiting = 0
        self.last_wake = float("-inf")
        self.timer: asyncio.TimerHandle | None = None

    def __call__(self, events: int, urgent: bool = False) -> None:
        self.waiting += events
        if self.waiting >= self.every:
            self._wake()
        elif urgent and self.timer is None:
            loop = asyncio.get_running_loop()
            delay = self.last_wake + self.urgent_gap - loop.time()
            if delay <= 0:
                self._wake()
            else:
                self.timer = loop.call_later(delay, self._wake)

    def _wake(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.waiting = 0
        self.last_wake = asyncio.get_running_loop().time()
        self.wake.set()


class GroupCommitter:
    def __init__(self, writers: Sequence[PostgresWriter | SqliteWriter], *, max_rows: int, max_pending: int,
                 on_commit: Callable[[int, bool], None] = lambda events, urgent: None,
                 linger: float = 0.0) -> None:
        self.writers = list(writers)
        self.encode_submission = self.writers[0].encode_submission
        self.encode_declarations = self.writers[0].encode_declarations
        self.max_rows = max_rows
        self.max_pending = max_pending
        self.linger = linger
        self.last_batch = 0  # requests in the last batch written: more than one means load
        self.on_commit = on_commit
        self.queue: collections.deque[Work] = collections.deque()
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.closing = False
        self.in_flight = 0
        self.batches = 0
        self.rows = 0
        self.fallbacks = 0  # batches that failed on their data and were written one by one

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._run(w)) for w in self.writers]

    async def submit(self, submission: dict, declarations: list[dict], outbox: list[tuple], *,
                     urgent: bool = False) -> bool:
        """Wait for the shared commit: True if stored now, False if the key was stored before."""
        if self.closing:
            raise StoreUnavailable("the service is stopping")
        if len(self.queue) >= self.max_pending:
            raise Overloaded(f"{len(self.queue)} requests waiting")
        future = asyncio.get_running_loop().create_future()
        self.queue.append(Work(submission["key"], self.encode_submission(submission),
                               self.encode_declarations(declarations), len(declarations), seal_outbox(outbox),
                               future, urgent,
                               tuple(d["result"] for d in declarations)))
        self.wake.set()
        # No timer per request: a write that hangs fails in the writer (asyncpg's command
        # timeout, SQLite's busy timeout), which fails every future of its batch.
        return await future

    def _take(self) -> list[Work]:
        batch, rows = [], 0
        while self.queue and (not batch or rows + self.queue[0].rows <= self.max_rows):
            work = self.queue.popleft()
            batch.append(work)
            rows += work.rows
        return batch

    async def _run(self, writer: PostgresWriter | SqliteWriter) -> None:
        while True:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            if self.linger and self.last_batch > 1 and len(self.queue) < self.max_rows:
                # Under load, let the requests already on their way join this commit: each
                # commit costs the same whatever its size (the round trip, the statement and
                # the commit, here and in the database), so fuller batches cost less CPU
                # per declaration. A lone request (the last batch held one) waits for nothing.
                await asyncio.sleep(self.linger)
            batch = self._take()
            self.last_batch = len(batch)
            self.in_flight += 1
            try:
                await self._write(writer, batch)
            finally:
                self.in_flight -= 1

    async def _write(self, writer: PostgresWriter | SqliteWriter, batch: list[Work]) -> None:
        try:
            stored = await writer.write(batch)
        except asyncio.CancelledError:
            for work in batch:
                if not work.future.done():
                    work.future.set_exception(StoreUnavailable("the service is stopping"))
            raise
        except Exception as exc:  # noqa: BLE001 - each request learns what became of it
            if writer.transient(exc) or len(batch) == 1:
                log.warning("declaration batch of %d not stored: %s", len(batch), type(exc).__name__)
                for work in batch:
                    if not work.future.done():
                        work.future.set_exception(StoreUnavailable(type(exc).__name__))
                return
            log.warning("declaration batch of %d failed (%s): writing one by one", len(batch), type(exc).__name__)
            self.fallbacks += 1
            FALLBACKS.labels("declaration").inc()
            for work in batch:
                await self._write(writer, [work])
            return
        self.batches += 1
        rows = sum(w.rows for w in batch)
        self.rows += rows
        written = [w for w in batch if id(w) in stored]
        # Metrics once per commit, not per request (the hot path).
        BATCH_ROWS.labels("declaration").observe(rows)
        results: dict[str, int] = {}
        for work in written:
            for result in work.results:
                results[result] = results.get(result, 0) + 1
        for result, count in results.items():
            STORED.labels("declaration", result).inc(count)
        WAITING.labels("declaration").set(len(self.queue))
        self.on_commit(sum(len(w.outbox) for w in written), any(w.urgent for w in written))
        for work in batch:
            if not work.future.done():
                work.future.set_result(id(work) in stored)

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Refuse new work, write what waits, then close the connections."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_seconds
        while (self.queue or self.in_flight) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for work in self.queue:
            if not work.future.done():
                work.future.set_exception(StoreUnavailable("the service is stopping"))
        for writer in self.writers:
            try:
                await writer.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                log.debug("closing a declaration writer failed", exc_info=True)
