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


@pytest.mark.kafka
@pytest.mark.slow
async def test_three_node_cluster_elects_a_new_leader_and_controller_and_heals(kafka_classpath: Path,
                                                                                 tmp_path: Path) -> None:
    """tests/infra/kafka_cluster.py: three nodes of one cluster; the leader of a partition and
    the active controller found, each killed in turn, the cluster carrying on with the other
    two and whole again once the node is back; a frozen node leaves the ISR and comes back."""
    from libs.common.bus import OutgoingMessage, create_bus

    from .kafka_cluster import KafkaCluster

    cluster = KafkaCluster(kafka_classpath, tmp_path / "cluster")
    try:
        await asyncio.to_thread(cluster.start, 180)
        assert len(cluster.bootstrap.split(",")) == 3
        assert probe("127.0.0.1", cluster.node(1).port) == 3
        bus = create_bus(f"kafka://{cluster.bootstrap}", replication_factor=3, min_insync_replicas=2, partitions=3)
        await bus.start()
        try:
            await bus.publish([OutgoingMessage(topic="khaibao.infra", value=b"one", key=b"k")])
            topic = cluster.metadata(["khaibao.infra"])["topics"]["khaibao.infra"]
            assert all(sorted(p["replicas"]) == [1, 2, 3] and len(p["isr"]) == 3 for p in topic.values()), topic

            leader = cluster.partition_leader("khaibao.infra", 0)
            await asyncio.to_thread(cluster.node(leader).kill)
            for _ in range(120):
                moved = cluster.partition_leader("khaibao.infra", 0)
                if moved not in (leader, -1):
                    break
                await asyncio.sleep(0.25)
            assert moved not in (leader, -1)
            await bus.publish([OutgoingMessage(topic="khaibao.infra", value=b"two", key=b"k")])  # 2 of 3 in sync
            assert cluster.under_replicated(["khaibao.infra"])
            await asyncio.to_thread(cluster.node(leader).start, 180)
            await asyncio.to_thread(cluster.wait_full_isr, None, 180)

            controller = cluster.active_controller()
            await asyncio.to_thread(cluster.node(controller).kill)
            for _ in range(120):
                try:
                    elected = cluster.active_controller()
                except OSError:
                    elected = controller
                if elected != controller:
                    break
                await asyncio.sleep(0.25)
            assert elected != controller
            await asyncio.to_thread(cluster.node(controller).start, 180)
            await asyncio.to_thread(cluster.wait_full_isr, None, 180)

            frozen = cluster.node(cluster.partition_leader("khaibao.infra", 0))
            frozen.freeze()
            assert frozen.is_running() and frozen not in cluster.live_nodes()
            for _ in range(120):
                if cluster.under_replicated(["khaibao.infra"]):
                    break
                await asyncio.sleep(0.25)
            assert cluster.under_replicated(["khaibao.infra"])
            frozen.thaw()
            await asyncio.to_thread(cluster.wait_full_isr, None, 180)
        finally:
            await bus.stop()
    finally:
        await asyncio.to_thread(cluster.kill)
    assert not cluster.is_running()
