"""Database access: one async engine per service, transactions owned by the caller.

SQLite (aiosqlite) is the embedded default, PostgreSQL (asyncpg) the production engine.
On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` so that concurrent
writers from several processes queue on the lock instead of failing on upgrade.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

READONLY = "khaibao_readonly"


# libpq's multi-host form: scheme://[userinfo@]host1:port1,host2:port2/database?...
_MULTI_HOST = re.compile(r"^(?P<scheme>[^:/?#]+)://(?P<userinfo>[^@/?#]*@)?(?P<hosts>[^/?#]*,[^/?#]*)(?P<rest>[/?].*)?$")


def parse_url(url: str | URL) -> URL:
    """A database URL as SQLAlchemy's URL object, multi-host URLs included.

    libpq's form ``postgresql+asyncpg://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write``
    (a primary and its standby: whichever is read-write answers) becomes SQLAlchemy's
    ``...@/db?host=h1:5432&host=h2:5432&target_session_attrs=read-write``, which the asyncpg
    dialect passes on as lists of hosts and ports; any other URL is ``make_url``'s."""
    if isinstance(url, URL):
        return url
    found = _MULTI_HOST.match(url)
    if found is None:
        return make_url(url)
    base = make_url(f"{found['scheme']}://{found['userinfo'] or ''}{found['rest'] or '/'}")
    hosts = [h for h in found["hosts"].split(",") if h]
    return base.update_query_pairs([("host", h) for h in hosts], append=True)


def asyncpg_options(url: str | URL, password: str | None = None) -> dict:
    """``asyncpg.connect`` keyword arguments for ``url`` (one host or several, with
    ``target_session_attrs``); ``password`` replaces the URL's."""
    parsed = parse_url(url)
    options: dict = {"user": parsed.username, "password": parsed.password if password is None else password,
                     "database": parsed.database}
    hosts = parsed.query.get("host")
    if hosts:
        hosts = (hosts,) if isinstance(hosts, str) else tuple(hosts)
        pairs = [h.rpartition(":") if ":" in h else (h, "", "") for h in hosts]
        options["host"] = [h for h, _, _ in pairs]
        options["port"] = [int(p) if p else (parsed.port or 5432) for _, _, p in pairs]
    else:
        options["host"], options["port"] = parsed.host or "127.0.0.1", parsed.port or 5432
    attrs = parsed.query.get("target_session_attrs")
    if attrs:
        options["target_session_attrs"] = attrs if isinstance(attrs, str) else attrs[-1]
    return options


def describe_hosts(url: str | URL) -> str:
    """``host:port[,host:port]/database`` without user or password, for messages."""
    options = asyncpg_options(url)
    hosts, ports = options["host"], options["port"]
    pairs = zip(hosts, ports, strict=True) if isinstance(hosts, list) else [(hosts, ports)]
    return ",".join(f"{h}:{p}" for h, p in pairs) + f"/{options['database'] or ''}"


def is_sqlite(url: str) -> bool:
    return parse_url(url).get_backend_name() == "sqlite"


def _configure_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        # Let SQLAlchemy emit BEGIN itself (see _on_begin) instead of the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection):  # noqa: ANN001
        mode = "DEFERRED" if connection.get_execution_options().get(READONLY) else "IMMEDIATE"
        connection.exec_driver_sql(f"BEGIN {mode}")


def with_password(url: str, password: str | None) -> URL:
    """``url`` with ``password`` set (a secret file's content; None: the URL as it is).

    The password is set on SQLAlchemy's URL object, never concatenated into a string, and
    a URL object hides it when rendered (logs, reprs)."""
    parsed = parse_url(url)
    return parsed if password is None else parsed.set(password=password)


def create_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10,
                  password: str | None = None) -> AsyncEngine:
    if is_sqlite(url):
        database = parse_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # One writer at a time is all SQLite allows: queueing in the pool is far cheaper
        # than many connections spinning on the file lock.
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60, pool_reset_on_return=None)
        _configure_sqlite(engine, sqlite_synchronous)
        return engine
    return create_async_engine(with_password(url, password), pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True)


class Database:
    """An engine plus the transaction boundary that requests and consumers own.

    Use cases receive the ``AsyncSession`` and never commit; ``transaction()`` commits
    when its block ends without an exception and rolls back otherwise. Code that wrote
    to the outbox marks the session (``session.info["outbox"]``) and the relay is woken
    right after the commit. ``commit_hooks`` are called with ``session.info`` after each
    commit (the session revocations a transaction recorded apply at once in this process).
    """

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10,
                 password: str | None = None) -> None:
        self.url = url  # as configured: without the password of a password file
        self.engine = create_engine(url, sqlite_synchronous=sqlite_synchronous, pool_size=pool_size,
                                    password=password)
        self.sqlite = is_sqlite(url)
        self.outbox_written = asyncio.Event()
        self.commit_hooks: list[Callable[[dict], None]] = []

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        async with self.engine.connect() as connection:
            if readonly:
                connection = await connection.execution_options(**{READONLY: True})
            async with connection.begin():
                session = AsyncSession(bind=connection, expire_on_commit=False)
                try:
                    yield session
                    await session.flush()
                finally:
                    await session.close()
            if session.info.get("outbox"):
                self.outbox_written.set()
            for hook in self.commit_hooks:
                hook(session.info)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            yield connection

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @classmethod
    def for_settings(cls, settings, **options) -> "Database":  # noqa: ANN001, ANN003 - ServiceSettings
        """The service's database: its URL, with the password of its password file if any."""
        return cls(settings.resolved_database_url(), sqlite_synchronous=settings.sqlite_synchronous,
                   password=settings.database_password(), **options)

    async def dispose(self) -> None:
        await self.engine.dispose()
