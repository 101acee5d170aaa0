"""The embedded durable bus: an append-only log in one SQLite file shared by processes.

It gives the one-command laptop run the same contract as Kafka: a publish returns once
the messages are committed to the file (WAL, synchronous=FULL); each consumer group keeps
its committed position per topic; a group is served by one member at a time, which holds
a lease that it renews while polling, so a standby process of the same group takes over
when the member dies.

Messages are kept as long as the services keep personal data (KHAIBAO_DATA_RETENTION_DAYS)
and no longer: ``prune`` deletes those published before a cutoff (bus/retention.py runs it
in every process), with ``secure_delete`` on so that their bytes are overwritten in the
file, and truncates the write-ahead log afterwards. Each consumer group records the topics
it reads (``bus_subscriptions``), so ``prune`` can tell, per group and topic, how many
messages it deletes that the group never consumed (a group lagging past the retention),
and ``backlog`` how old a group's oldest unconsumed message is.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from .base import Bus, BusUnavailable, Consumer, Message, OutgoingMessage

SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_messages (
    "offset" INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    headers TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS bus_messages_topic ON bus_messages (topic, "offset");
CREATE TABLE IF NOT EXISTS bus_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    PRIMARY KEY (grp, topic)
);
CREATE TABLE IF NOT EXISTS bus_groups (
    grp TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS bus_subscriptions (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    since REAL NOT NULL,
    PRIMARY KEY (grp, topic)
);
"""


@dataclass
class PruneReport:
    """What one ``prune`` did: messages deleted, and per (group, topic) how many of them
    the group had not consumed yet."""

    deleted: int = 0
    unconsumed: dict[tuple[str, str], int] = field(default_factory=dict)


class _Connection:
    """One sqlite3 connection used from one worker thread."""

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-bus")
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # Pruned messages hold personal data: overwrite their bytes, not only unlink them.
            db.execute("PRAGMA secure_delete=ON")
            self._db = db
        return self._db

    async def run(self, fn, *args):  # noqa: ANN001, ANN002
        def call():
            try:
                return fn(self._open(), *args)
            except sqlite3.OperationalError as exc:
                raise BusUnavailable(f"embedded bus: {exc}") from None

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        def close():
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)




def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    """JSON ``[name, text]`` pairs; a value that is not UTF-8 is stored as ``[name, base64, "base64"]``."""
    entries = []
    for name, value in headers:
        try:
            entries.append([name, value.decode("utf-8")])
        except UnicodeDecodeError:
            entries.append([name, base64.b64encode(value).decode("ascii"), "base64"])
    return json.dumps(entries)


def _decode_headers(text: str) -> tuple[tuple[str, bytes], ...]:
    return tuple((entry[0], base64.b64decode(entry[1]) if entry[2:] == ["base64"] else entry[1].encode("utf-8"))
                 for entry in json.loads(text))


@contextmanager
def _immediate(db: sqlite3.Connection):
    """A write transaction that takes the file's write lock up front."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class EmbeddedBus(Bus):
    OPTIONS = frozenset({"busy_timeout", "lease_seconds", "poll_interval"})

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0, lease_seconds: float = 5.0,
                 poll_interval: float = 0.05) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self._conn = _Connection(self.path, busy_timeout)

    async def start(self) -> None:
        await self._conn.run(lambda db: db.executescript(SCHEMA))

    async def stop(self) -> None:
        await self._conn.close()

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        return None  # topics exist as soon as a message names them

    async def ping(self) -> None:
        await self._conn.run(lambda db: db.execute("SELECT 1 FROM bus_groups LIMIT 1").fetchall())

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        now = time.time()

        def insert(db: sqlite3.Connection) -> None:
            with _immediate(db):
                db.executemany(
                    "INSERT INTO bus_messages (topic, key, value, headers, created_at) VALUES (?, ?, ?, ?, ?)",
                    [(m.topic, m.key, m.value,
                      _encode_headers(m.headers), now)
                     for m in messages],
                )

        await self._conn.run(insert)

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer:
        return EmbeddedConsumer(self, group, topics)

    async def prune(self, cutoff: float, *, batch: int = 5000) -> PruneReport:
        """Delete every message published before ``cutoff`` (epoch seconds), oldest first,
        ``batch`` at a time (each one short write transaction); count, per subscribed group
        and topic, the deleted messages the group had not consumed."""
        report = PruneReport()

        def one_batch(db: sqlite3.Connection) -> int:
            with _immediate(db):
                # Offsets grow with time: the oldest ``batch`` messages, up to the first one
                # published at or after the cutoff, are this batch (O(batch) whatever the
                # size of the log; nothing to read past the first row when it is recent).
                oldest = db.execute('SELECT "offset", created_at FROM bus_messages ORDER BY "offset" LIMIT ?',
                                    (batch,)).fetchall()
                bound = next((offset for offset, created in oldest if created >= cutoff),
                             oldest[-1][0] + 1 if oldest else 0)
                if not oldest or bound == oldest[0][0]:
                    return 0
                for grp, topic, committed in db.execute(
                        'SELECT s.grp, s.topic, coalesce(o."offset", 0) FROM bus_subscriptions s '
                        'LEFT JOIN bus_offsets o ON o.grp = s.grp AND o.topic = s.topic').fetchall():
                    unread = db.execute('SELECT count(*) FROM bus_messages WHERE topic = ? AND "offset" > ? '
                                        'AND "offset" < ?', (topic, committed, bound)).fetchone()[0]
                    if unread:
                        report.unconsumed[(grp, topic)] = report.unconsumed.get((grp, topic), 0) + unread
                return db.execute('DELETE FROM bus_messages WHERE "offset" < ?', (bound,)).rowcount

        while True:
            deleted = await self._conn.run(one_batch)
            report.deleted += deleted
            if deleted < batch:
                break
        if report.deleted:
            # The deleted pages' old images stay in the write-ahead log until it is reset.
            await self._conn.run(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
        return report

    async def backlog(self) -> dict[tuple[str, str], float | None]:
        """Per subscribed (group, topic): the publish time of the oldest message the group
        has not consumed (None when it is up to date)."""

        def oldest(db: sqlite3.Connection) -> dict[tuple[str, str], float | None]:
            result = {}
            for grp, topic, committed in db.execute(
                    'SELECT s.grp, s.topic, coalesce(o."offset", 0) FROM bus_subscriptions s '
                    'LEFT JOIN bus_offsets o ON o.grp = s.grp AND o.topic = s.topic').fetchall():
                row = db.execute('SELECT created_at FROM bus_messages WHERE topic = ? AND "offset" > ? '
                                 'ORDER BY "offset" LIMIT 1', (topic, committed)).fetchone()
                result[(grp, topic)] = row[0] if row else None
            return result

        return await self._conn.run(oldest)


class EmbeddedConsumer(Consumer):
    def __init__(self, bus: EmbeddedBus, group: str, topics: Sequence[str]) -> None:
        self.bus = bus
        self.group = group
        self.topics = tuple(topics)
        self.member = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._conn = _Connection(bus.path, bus.busy_timeout)
        self._positions: dict[str, int] | None = None  # fetch positions while holding the lease

    async def start(self) -> None:
        def subscribe(db: sqlite3.Connection) -> None:
            db.executescript(SCHEMA)
            with _immediate(db):
                db.executemany("INSERT OR IGNORE INTO bus_subscriptions (grp, topic, since) VALUES (?, ?, ?)",
                               [(self.group, topic, time.time()) for topic in self.topics])

        await self._conn.run(subscribe)

    async def stop(self) -> None:
        def release(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM bus_groups WHERE grp = ? AND owner = ?", (self.group, self.member))

        try:
            await self._conn.run(release)
        finally:
            await self._conn.close()

    def _acquire(self, db: sqlite3.Connection) -> bool:
        now = time.time()
        until = now + self.bus.lease_seconds
        with _immediate(db):
            db.execute("INSERT OR IGNORE INTO bus_groups (grp, owner, lease_until) VALUES (?, ?, 0)",
                       (self.group, self.member))
            cursor = db.execute(
                "UPDATE bus_groups SET owner = ?, lease_until = ? "
                "WHERE grp = ? AND (owner = ? OR lease_until < ?)",
                (self.member, until, self.group, self.member, now),
            )
        return cursor.rowcount == 1

    def _fetch(self, db: sqlite3.Connection, max_records: int) -> tuple[bool, list[Message]]:
        if not self._acquire(db):
            self._positions = None
            return False, []
        if self._positions is None:
            committed = dict(db.execute(
                f'SELECT topic, "offset" FROM bus_offsets WHERE grp = ? AND topic IN ({",".join("?" * len(self.topics))})',
                (self.group, *self.topics),
            ).fetchall())
            self._positions = {t: committed.get(t, 0) for t in self.topics}
        where = " OR ".join('(topic = ? AND "offset" > ?)' for _ in self.topics)
        params: list = []
        for topic in self.topics:
            params += [topic, self._positions[topic]]
        rows = db.execute(
            f'SELECT "offset", topic, key, value, headers FROM bus_messages WHERE {where} '
            f'ORDER BY "offset" LIMIT ?',
            (*params, max_records),
        ).fetchall()
        messages = []
        for offset, topic, key, value, headers in rows:
            self._positions[topic] = offset
            messages.append(Message(
                topic=topic, partition=0, offset=offset, value=value, key=key,
                headers=_decode_headers(headers),
            ))
        return True, messages

    async def poll(self, max_records: int = 100, timeout: float = 0.5) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            _, messages = await self._conn.run(self._fetch, max_records)
            if messages or time.monotonic() >= deadline:
                return messages
            await asyncio.sleep(self.bus.poll_interval)

    async def commit(self, message: Message) -> None:
        def commit(db: sqlite3.Connection) -> bool:
            with _immediate(db):
                held = db.execute(
                    "UPDATE bus_groups SET lease_until = ? WHERE grp = ? AND owner = ?",
                    (time.time() + self.bus.lease_seconds, self.group, self.member),
                ).rowcount == 1
                if held:
                    db.execute(
                        'INSERT INTO bus_offsets (grp, topic, "offset") VALUES (?, ?, ?) '
                        'ON CONFLICT (grp, topic) DO UPDATE SET "offset" = max("offset", excluded."offset")',
                        (self.group, message.topic, message.offset),
                    )
            return held

        if not await self._conn.run(commit):
            # Another member took the group over: it will redeliver from the committed position.
            self._positions = None
            raise BusUnavailable(f"consumer {self.member} lost the lease of group {self.group}")

    async def leave(self) -> None:
        def forget(db: sqlite3.Connection) -> None:
            with _immediate(db):
                for table in ("bus_subscriptions", "bus_offsets"):
                    db.execute(f"DELETE FROM {table} WHERE grp = ?", (self.group,))

        await self._conn.run(forget)

    async def lag(self) -> dict[str, int]:
        def lag(db: sqlite3.Connection) -> dict[str, int]:
            result = {}
            for topic in self.topics:
                row = db.execute(
                    'SELECT count(*) FROM bus_messages WHERE topic = ? AND "offset" > '
                    '(SELECT coalesce(max("offset"), 0) FROM bus_offsets WHERE grp = ? AND topic = ?)',
                    (topic, self.group, topic),
                ).fetchone()
                result[topic] = row[0]
            return result

        return await self._conn.run(lag)
