"""Group commit: many requests' declarations written in one transaction.

A request validates and screens its declaration, then hands the rows (its submission,
its declarations, their outbox events) to the committer and waits. A writer task takes
everything waiting (up to ``max_rows`` declarations), writes it in ONE transaction
(PostgreSQL: one statement, see ``PostgresWriter``; SQLite: ``executemany`` in a ``BEGIN IMMEDIATE`` transaction) and
only after the commit resolves each request's future. So every answer 2xx is durable,
and its events are in the outbox of the same transaction (no dual write). A writer that
is free takes what is there, so batches grow with the load and a lone request is written
at once; under load (its last batch held several requests) it first lingers a few
milliseconds (``linger``) for the requests on their way: every commit costs about the
same whatever its size, so fuller batches cost less CPU per declaration.

A key already stored (a double submit) is reported as a duplicate, and the request
answers with the first submission. A batch that fails on its data is retried one
request at a time, so one bad request cannot fail the others; a database that is down
fails the batch (the requests answer 503 and nothing was stored).
"""
from __future__ import annotations

import asyncio
import collections
import fcntl
import logging
import operator
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC

import asyncpg
import sqlalchemy as sa
from prometheus_client import Counter, Gauge, Histogram
from pydantic_core import to_json
from sqlalchemy.engine import make_url

from .models import declarations_table, submissions_table

BATCH_ROWS = Histogram("khaibao_declaration_batch_rows", "Declarations written per group commit", ["service"],
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
STORED = Counter("khaibao_declarations_stored_total", "Declarations durably stored", ["service"])
WAITING = Gauge("khaibao_declaration_commit_queue", "Requests waiting for a group commit", ["service"],
                multiprocess_mode="max")

log = logging.getLogger(__name__)

# Every column the hot path fills (erased_at is retention's, NULL until then).
DECLARATION_COLUMNS = tuple(c.name for c in declarations_table.columns if c.name != "erased_at")
SUBMISSION_COLUMNS = ("key", "submission_id", "venue_id", "size", "created_at")
OUTBOX_COLUMNS = ("event_id", "event_type", "topic", "key", "payload", "trace_id", "created_at")


class Overloaded(RuntimeError):
    """Too many requests are waiting for the database: answer 503, try again shortly."""


class StoreUnavailable(RuntimeError):
    """The database did not take the batch: nothing of this request was stored."""


@dataclass
class Work:
    key: str
    submission: tuple
    declarations: object  # as the writer takes them: JSON (PostgreSQL), row tuples (SQLite)
    rows: int  # declarations
    outbox: list[tuple]
    future: asyncio.Future = field(repr=False)
    urgent: bool = False


def first_of_each_key(batch: Sequence[Work]) -> list[Work]:
    seen: set[str] = set()
    firsts = []
    for work in batch:
        if work.key not in seen:
            seen.add(work.key)
            firsts.append(work)
    return firsts


class PostgresWriter:
    """One connection of its own (asyncpg, no pool, no ORM) and ONE statement per batch:
    the submissions as arrays, the declarations as one JSON document
    (``json_populate_recordset`` into the table's own row type) and the events as arrays,
    in three INSERTs of one ``WITH``: the declarations and events of a key stored before
    are left out (only the submissions the first INSERT stored go on). One round trip in
    its own implicit transaction, where every round trip on loopback TCP costs about
    0.2 ms of CPU between the two processes (the previous BEGIN, INSERT, COPY, COPY,
    COMMIT cost five); and a declaration row costs a few µs to serialise in the request
    (pydantic-core's JSON) where asyncpg spent ~1 µs per value encoding arrays or COPY.
    """

    COLUMN_TYPES = ("SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
                    "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped")

    def __init__(self, url: str, timeout: float = 15.0) -> None:
        self.timeout = timeout
        parsed = make_url(url)
        self.options = {"user": parsed.username, "password": parsed.password, "host": parsed.host or "127.0.0.1",
                        "port": parsed.port or 5432, "database": parsed.database, "command_timeout": timeout}
        self.connection: asyncpg.Connection | None = None
        self.statement: str | None = None

    @staticmethod
    def encode_declarations(declarations: list[dict]) -> bytes:
        """A request's declarations as the writer sends them (in the request, before it waits)."""
        # The ids made by the hot path (asyncpg's C UUID) as text: pydantic-core serialises a
        # UUID subclass through its slow path (14 µs a row instead of 7).
        return to_json([{**d, "id": str(d["id"]), "submission_id": str(d["submission_id"])}
                        for d in declarations])[1:-1]  # the array's items, joined with the batch's others

    async def _connect(self) -> asyncpg.Connection:
        if self.connection is None or self.connection.is_closed():
            self.connection = await asyncpg.connect(**self.options, timeout=10)
        if self.statement is None:
            self.statement = await self._statement(self.connection)
        return self.connection

    async def _statement(self, connection: asyncpg.Connection) -> str:
        """The batch's statement, its array types read from the tables themselves."""
        types = {table: dict(await connection.fetch(self.COLUMN_TYPES, table)) for table in ("submissions", "outbox")}
        params = iter(range(1, 100))

        def arrays(table: str, columns: Sequence[str]) -> str:
            return ", ".join(f"${next(params)}::{types[table][c]}[]" for c in columns)

        submissions = arrays("submissions", SUBMISSION_COLUMNS)
        declarations = f"${next(params)}::json"
        events = arrays("outbox", OUTBOX_COLUMNS)
        owners = f"${next(params)}::uuid[]"
        d_cols = ", ".join(f'"{c}"' for c in DECLARATION_COLUMNS)
        e_cols = ", ".join(OUTBOX_COLUMNS)
        return (
            f"WITH s AS (INSERT INTO submissions ({', '.join(SUBMISSION_COLUMNS)}) SELECT * FROM unnest({submissions}) "
            "ON CONFLICT (key) DO NOTHING RETURNING key, submission_id), "
            f"d AS (INSERT INTO declarations ({d_cols}) SELECT {d_cols} "
            f"FROM json_populate_recordset(NULL::declarations, {declarations}) AS x "
            "WHERE x.submission_id IN (SELECT submission_id FROM s)), "
            # The events keep their order (the outbox id is the relay's order).
            f"e AS (INSERT INTO outbox ({e_cols}) SELECT {e_cols} FROM unnest({events}, {owners}) WITH ORDINALITY "
            f"AS y({e_cols}, owner, n) WHERE y.owner IN (SELECT submission_id FROM s) ORDER BY n) "
            "SELECT key FROM s"
        )

    async def write(self, batch: Sequence[Work]) -> set[int]:
        """The ids (``id(work)``) of the works stored; the others are duplicates."""
        connection = await self._connect()
        works = first_of_each_key(batch)
        submissions = list(zip(*(w.submission for w in works), strict=True))
        declarations = b"[" + b",".join(w.declarations for w in works) + b"]"
        events = list(zip(*(r for w in works for r in w.outbox), strict=True)) or [()] * len(OUTBOX_COLUMNS)
        owners = [w.submission[1] for w in works for _ in w.outbox]
        rows = await connection.fetch(self.statement, *submissions, declarations.decode(), *events, owners)
        inserted = {r[0] for r in rows}
        return {id(w) for w in works if w.key in inserted}

    def transient(self, exc: BaseException) -> bool:
        if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError,
                            asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError)):
            self.connection = None
            return True
        return False

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


def _sqlite_converter(column) -> Callable | None:  # noqa: ANN001
    """How SQLAlchemy stores a value of this column in SQLite (the ORM reads it back)."""
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):  # SQLModel's UTCDateTime wraps a DateTime
        kind = kind.impl_instance
    if isinstance(kind, sa.Uuid):
        return lambda v: v.hex
    if isinstance(kind, sa.DateTime):
        return lambda v: v.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(kind, sa.Date):
        return lambda v: v.isoformat()
    if isinstance(kind, sa.Boolean):
        return int
    return None


class RowEncoder:
    """A row as a dict -> the tuple a writer inserts (native values for asyncpg's COPY,
    SQLite's own text forms for sqlite3), built in the request before it waits."""

    def __init__(self, table, columns: Sequence[str], sqlite: bool) -> None:  # noqa: ANN001
        self.columns = tuple(columns)
        self.pairs = tuple((c, _sqlite_converter(table.c[c]) if sqlite else None) for c in columns)
        # Native values (PostgreSQL): the columns picked in C.
        self.pick = operator.itemgetter(*self.columns) if not any(conv for _, conv in self.pairs) else None

    def __call__(self, values: dict) -> tuple:
        if self.pick is not None:
            return self.pick(values)
        return tuple(values[c] if conv is None or values[c] is None else conv(values[c]) for c, conv in self.pairs)


class SqliteWriter:
    """The stdlib sqlite3 module in a thread of its own (aiosqlite would hop per statement)."""

    def __init__(self, url: str, synchronous: str = "FULL", timeout: float = 15.0) -> None:
        self.path = make_url(url).database
        self.synchronous = synchronous
        self.timeout = timeout
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="declaration-writer")
        self.db: sqlite3.Connection | None = None
        self.lock = None
        cols = ", ".join(f'"{c}"' for c in DECLARATION_COLUMNS)
        self.insert_declarations = f"INSERT INTO declarations ({cols}) VALUES ({', '.join('?' * len(DECLARATION_COLUMNS))})"
        self.insert_submissions = f"INSERT INTO submissions ({', '.join(SUBMISSION_COLUMNS)}) VALUES (?, ?, ?, ?, ?)"
        self.insert_outbox = f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"

    encode = RowEncoder(declarations_table, DECLARATION_COLUMNS, sqlite=True)

    @classmethod
    def encode_declarations(cls, declarations: list[dict]) -> list[tuple]:
        return [cls.encode(d) for d in declarations]

    def _open(self) -> sqlite3.Connection:
        if self.lock is None:
            self.lock = open(f"{self.path}.writers", "a+b")  # noqa: SIM115 - held for the process's life
        if self.db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=self.timeout)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            self.db = db
        return self.db

    def _write(self, batch: Sequence[Work]) -> set[int]:
        db = self._open()
        firsts = first_of_each_key(batch)
        # The writers of the other web workers queue on this lock and wake the moment it is
        # free; SQLite's own busy handler would let them sleep up to 100 ms between tries.
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        db.execute("BEGIN IMMEDIATE")
        try:
            existing: set[str] = set()
            keys = [w.key for w in firsts]
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                existing.update(r[0] for r in db.execute(
                    f"SELECT key FROM submissions WHERE key IN ({', '.join('?' * len(chunk))})", chunk))
            stored = [w for w in firsts if w.key not in existing]
            db.executemany(self.insert_submissions, [w.submission for w in stored])
            db.executemany(self.insert_declarations, [r for w in stored for r in w.declarations])
            db.executemany(self.insert_outbox, [r for w in stored for r in w.outbox])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
        return {id(w) for w in stored}

    async def write(self, batch: Sequence[Work]) -> set[int]:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._write, batch)

    def transient(self, exc: BaseException) -> bool:
        if isinstance(exc, sqlite3.OperationalError | OSError):
            return True
        return False

    async def close(self) -> None:
        def _close() -> None:
            if self.db is not None:
                self.db.close()
                self.db = None
            if self.lock is not None:
                self.lock.close()
                self.lock = None

        await asyncio.get_running_loop().run_in_executor(self.executor, _close)
        self.executor.shutdown(wait=False)


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
        sqlite = isinstance(self.writers[0], SqliteWriter)
        self.encode_declarations = type(self.writers[0]).encode_declarations
        self.encode_submission = RowEncoder(submissions_table, SUBMISSION_COLUMNS, sqlite)
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
                               self.encode_declarations(declarations), len(declarations), outbox, future, urgent))
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
                # commit costs the same whatever its size (round trips, BEGIN/COMMIT, the
                # COPY set-up, here and in the database), so fuller batches cost less CPU
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
            for work in batch:
                await self._write(writer, [work])
            return
        self.batches += 1
        rows = sum(w.rows for w in batch)
        self.rows += rows
        BATCH_ROWS.labels("declaration").observe(rows)
        STORED.labels("declaration").inc(sum(w.rows for w in batch if id(w) in stored))
        WAITING.labels("declaration").set(len(self.queue))
        written = [w for w in batch if id(w) in stored]
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
