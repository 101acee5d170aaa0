"""The group commit's writers: how one batch of declarations reaches the database.

``PostgresWriter`` sends a batch as ONE statement on a connection of its own;
``SqliteWriter`` runs the stdlib sqlite3 module in a thread of its own. Each says how a
request's rows are encoded for it (``encode_submission``, ``encode_declarations``, run in
the request before it waits; the personal fields are sealed there, fieldcrypt.RowSealer); both take ``Work`` items built by
``batcher.GroupCommitter`` and return which were stored (the others' keys were stored
before: double submits).
"""
from __future__ import annotations

import asyncio
import fcntl
import operator
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC

import asyncpg
import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy.engine import make_url

from libs.common.db import asyncpg_options
from libs.common.fieldcrypt import RowSealer, ring
from libs.common.outbox import PAYLOAD_CONTEXT

from .models import RING, declarations_table, submissions_table

# Every column the hot path fills (erased_at is retention's, NULL until then).
DECLARATION_COLUMNS = tuple(c.name for c in declarations_table.columns if c.name != "erased_at")
SUBMISSION_COLUMNS = ("key", "submission_id", "venue_id", "size", "created_at", "digest")
OUTBOX_COLUMNS = ("event_id", "event_type", "topic", "key", "payload", "trace_id", "created_at")
# The personal fields sealed and the ID number's and phone's blind indexes computed, in the
# request (SQLAlchemy's column types are bypassed here: asyncpg's JSON, sqlite3's tuples).
seal_declaration = RowSealer(declarations_table)


def seal_outbox(rows: list[tuple]) -> list[tuple]:
    """The events' payloads sealed at rest, as ``outbox.publish`` does (the relay opens them)."""
    keys = ring(RING)
    return [(*r[:4], keys.seal_bytes(r[4], PAYLOAD_CONTEXT), *r[5:]) for r in rows]


@dataclass
class Work:
    key: str
    submission: tuple
    declarations: object  # as the writer takes them: JSON (PostgreSQL), row tuples (SQLite)
    rows: int  # declarations
    outbox: list[tuple]
    future: asyncio.Future = field(repr=False)
    urgent: bool = False
    results: tuple[str, ...] = ()  # each declaration's screening result (green, yellow, red), for the metrics


def first_of_each_key(batch: Sequence[Work]) -> list[Work]:
    seen: set[str] = set()
    firsts = []
    for work in batch:
        if work.key not in seen:
            seen.add(work.key)
            firsts.append(work)
    return firsts


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
    """A row as a dict -> the tuple a writer inserts (native values for asyncpg's arrays,
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

    def __init__(self, url: str, timeout: float = 15.0, password: str | None = None) -> None:
        self.timeout = timeout
        # One server, or a primary and its standby (a multi-host URL: the read-write one).
        self.options = {**asyncpg_options(url, password), "command_timeout": timeout}
        self.connection: asyncpg.Connection | None = None
        self.statement: str | None = None

    encode_submission = RowEncoder(submissions_table, SUBMISSION_COLUMNS, sqlite=False)

    @staticmethod
    def encode_declarations(declarations: list[dict]) -> bytes:
        """A request's declarations as the writer sends them (in the request, before it waits)."""
        # The ids made by the hot path (asyncpg's C UUID) as text: pydantic-core serialises a
        # UUID subclass through its slow path (14 µs a row instead of 7).
        rows = []
        for d in declarations:
            row = seal_declaration(d)
            row["id"], row["submission_id"] = str(d["id"]), str(d["submission_id"])
            rows.append(row)
        return to_json(rows)[1:-1]  # the array's items, joined with the batch's others

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
        # A failover: no node is read-write yet (TargetServerAttributeNotMatched), or this
        # connection's node became a standby (ReadOnlySQLTransactionError); the batch is
        # retried on a new connection (the submission key makes a second write a no-op).
        if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.InterfaceError,
                            asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                            asyncpg.exceptions.TargetServerAttributeNotMatched,
                            asyncpg.ReadOnlySQLTransactionError, asyncpg.AdminShutdownError)):
            self.connection = None
            return True
        return False

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


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
        self.insert_submissions = (f"INSERT INTO submissions ({', '.join(SUBMISSION_COLUMNS)}) "
                                   f"VALUES ({', '.join('?' * len(SUBMISSION_COLUMNS))})")
        self.insert_outbox = f"INSERT INTO outbox ({', '.join(OUTBOX_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"

    encode = RowEncoder(declarations_table, DECLARATION_COLUMNS, sqlite=True)
    encode_submission = RowEncoder(submissions_table, SUBMISSION_COLUMNS, sqlite=True)

    @classmethod
    def encode_declarations(cls, declarations: list[dict]) -> list[tuple]:
        return [cls.encode(seal_declaration(d)) for d in declarations]

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
