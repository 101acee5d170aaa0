"""The engines the test suite runs against, without Docker: a local Kafka broker and PostgreSQL.

* ``KHAIBAO_KAFKA_CLASSPATH`` (the jars from ``deploy/kafka/pom.xml``): a private broker
  starts, serves, and comes back on the same port after ``kill()`` + ``restart()``.
* ``KHAIBAO_TEST_KAFKA_BOOTSTRAP``: the shared broker takes an idempotent produce and a
  consumer-group read.
* ``KHAIBAO_TEST_POSTGRES_URL``: the shared server answers ``select 1`` as a superuser.
* PostgreSQL server binaries installed: a private cluster survives ``kill()`` + ``restart()``.

Without the engine a test is skipped, unless ``KHAIBAO_REQUIRE_ENGINES=1`` (CI), where a
missing engine is a failure.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import pytest

from .kafka_local import LocalKafka, probe
from .postgres_local import LocalPostgres, find_pg_bin


def _require(condition: bool, reason: str) -> None:
    """Skip without the engine; fail instead when the run says engines are required."""
    if condition:
        return
    if os.environ.get("KHAIBAO_REQUIRE_ENGINES") == "1":
        pytest.fail(f"{reason} (KHAIBAO_REQUIRE_ENGINES=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def _accepts_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture
def kafka_classpath() -> Path:
    value = os.environ.get("KHAIBAO_KAFKA_CLASSPATH", "")
    _require(bool(value), "KHAIBAO_KAFKA_CLASSPATH is not set (build deploy/kafka/pom.xml)")
    path = Path(value)
    _require(any(path.glob("kafka_2.13-*.jar")), f"no kafka_2.13 jar in KHAIBAO_KAFKA_CLASSPATH={value}")
    _require(shutil.which("java") is not None, "no java on PATH")
    return path


@pytest.mark.kafka
@pytest.mark.slow
def test_private_kafka_survives_kill_and_restart(kafka_classpath: Path, tmp_path: Path) -> None:
    kafka = LocalKafka(kafka_classpath, tmp_path / "kafka")
    try:
        kafka.start(timeout=120)
        port = kafka.port
        assert kafka.bootstrap == f"127.0.0.1:{port}"
        assert _accepts_tcp("127.0.0.1", port)
        assert probe("127.0.0.1", port) == 1

        kafka.kill()
        assert not kafka.is_running()
        assert not _accepts_tcp("127.0.0.1", port)

        kafka.restart(timeout=120)
        assert kafka.port == port, "restart() must keep the port"
        assert _accepts_tcp("127.0.0.1", port)
        assert probe("127.0.0.1", port) == 1
        assert (tmp_path / "kafka" / "kafka.log").read_text().count("--- formatting storage") == 1
    finally:
        kafka.stop()
    assert not kafka.is_running()


@pytest.mark.kafka
async def test_shared_kafka_idempotent_produce_and_group_consume() -> None:
    bootstrap = os.environ.get("KHAIBAO_TEST_KAFKA_BOOTSTRAP", "")
    _require(bool(bootstrap), "KHAIBAO_TEST_KAFKA_BOOTSTRAP is not set")
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"infra-smoke-{uuid.uuid4().hex[:12]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"hello", key=b"infra")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"{topic}-group",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=60)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"infra", b"hello")
    assert (message.partition, message.offset) == (sent.partition, sent.offset)


@pytest.mark.postgres
async def test_shared_postgres_answers_as_superuser() -> None:
    url = os.environ.get("KHAIBAO_TEST_POSTGRES_URL", "")
    _require(bool(url), "KHAIBAO_TEST_POSTGRES_URL is not set")
    import asyncpg

    conn = await asyncpg.connect(url, timeout=30)
    try:
        assert await conn.fetchval("select 1") == 1
        assert await conn.fetchval("select rolsuper from pg_roles where rolname = current_user") is True
    finally:
        await conn.close()


@pytest.mark.postgres
@pytest.mark.slow
async def test_private_postgres_survives_kill_and_restart() -> None:
    _require(find_pg_bin() is not None, "no PostgreSQL server binaries (apt-get install postgresql)")
    import asyncpg

    # Not tmp_path: when we are root the server runs as the postgres OS user, which cannot
    # traverse pytest's private (0700) temporary directories.
    base = Path(tempfile.mkdtemp(prefix="khaibao-pg-test-"))
    base.chmod(0o755)
    pg = LocalPostgres(base / "pg")
    try:
        await asyncio.to_thread(pg.start)
        conn = await asyncpg.connect(pg.url, timeout=30)
        try:
            await conn.execute("create table survives (id int primary key)")
            await conn.execute("insert into survives values (1)")
        finally:
            await conn.close()
        port = pg.port

        await asyncio.to_thread(pg.kill)
        assert not pg.is_running()
        assert not _accepts_tcp("127.0.0.1", port)

        await asyncio.to_thread(pg.restart)
        assert pg.port == port
        conn = await asyncpg.connect(pg.url, timeout=30)
        try:
            assert await conn.fetchval("select count(*) from survives") == 1
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(base, ignore_errors=True)
    assert not pg.is_running()
