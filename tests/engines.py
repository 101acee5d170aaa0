"""Which real engines the tests can use, decided in well under a second.

1. A Docker engine answers: testcontainers start PostgreSQL (docker-compose.yml's image) and
   Kafka (the official apache/kafka image of the version CI runs, deploy/kafka/pom.xml's).
2. Otherwise the servers that .ci/run (or a developer) started locally, named by
   KHAIBAO_TEST_POSTGRES_URL and KHAIBAO_TEST_KAFKA_BOOTSTRAP.
3. Otherwise the engine suites skip, loudly; with KHAIBAO_REQUIRE_ENGINES=1 they fail.
"""
from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
KAFKA_POM = ROOT / "deploy" / "kafka" / "pom.xml"
COMPOSE = ROOT / "docker-compose.yml"


def _docker_answers() -> bool:
    path = "/var/run/docker.sock"
    if not os.path.exists(path) and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker

        docker.from_env(timeout=0.5).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means no engine
        return False


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


@lru_cache(maxsize=1)
def docker_available() -> bool:
    return _docker_answers()


def engines_required() -> bool:
    return os.environ.get("KHAIBAO_REQUIRE_ENGINES") == "1"


def unavailable(what: str) -> None:
    message = (f"{what} is not available: set KHAIBAO_TEST_POSTGRES_URL / KHAIBAO_TEST_KAFKA_BOOTSTRAP "
               f"(bash .ci/run starts both) or run a Docker engine")
    if engines_required():
        pytest.fail(message + " (KHAIBAO_REQUIRE_ENGINES=1)")
    pytest.skip(message)


def kafka_version() -> str:
    """The Kafka that CI runs: kafka.version in deploy/kafka/pom.xml."""
    version = ET.parse(KAFKA_POM).getroot().find("{http://maven.apache.org/POM/4.0.0}properties/"
                                                  "{http://maven.apache.org/POM/4.0.0}kafka.version")
    if version is None or not (version.text or "").strip():
        raise ValueError(f"no kafka.version property in {KAFKA_POM.name}")
    return version.text.strip()


def kafka_image() -> str:
    return f"apache/kafka:{kafka_version()}"


def postgres_image() -> str:
    """The PostgreSQL image production runs (docker-compose.yml)."""
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["postgres"]["image"]


# The client port is mapped to a random host port, known only once the container runs; the
# broker therefore waits for this script, which advertises that port, before it starts.
_KAFKA_START = "/tmp/khaibao-kafka-start.sh"


def _start_kafka():
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    kafka = (
        DockerContainer(kafka_image())
        .with_exposed_ports(9092)
        .with_envs(
            CLUSTER_ID="BSCbv36iS8ucMoxxpRa3kg",
            KAFKA_NODE_ID="1",
            KAFKA_PROCESS_ROLES="broker,controller",
            KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
            KAFKA_LISTENERS="PLAINTEXT://:9092,CONTROLLER://:9093,BROKER://:9094",
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,BROKER:PLAINTEXT",
            KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
            KAFKA_INTER_BROKER_LISTENER_NAME="BROKER",
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        )
        .with_command(["bash", "-c", f"while [ ! -f {_KAFKA_START} ]; do sleep 0.1; done; exec bash {_KAFKA_START}"])
    )
    kafka.start()
    advertised = f"PLAINTEXT://{kafka.get_container_host_ip()}:{kafka.get_exposed_port(9092)},BROKER://localhost:9094"
    script = f"export KAFKA_ADVERTISED_LISTENERS={advertised}\nexec /etc/kafka/docker/run\n"
    kafka.copy_into_container(script.encode(), _KAFKA_START)
    wait = LogMessageWaitStrategy("Kafka Server started")
    wait.with_startup_timeout(120)
    wait.wait_until_ready(kafka)
    return kafka


@lru_cache(maxsize=1)
def _containers():
    from testcontainers.community.postgres import PostgresContainer

    postgres = PostgresContainer(postgres_image(), username="khaibao", password="khaibao", dbname="postgres",
                                 driver=None)
    postgres.start()
    return postgres, _start_kafka()


def postgres_url() -> str | None:
    """A superuser URL (``postgresql://…/postgres``), or None."""
    url = os.environ.get("KHAIBAO_TEST_POSTGRES_URL")
    if url:
        return url
    if docker_available():
        postgres, _ = _containers()
        return postgres.get_connection_url()
    return None


def kafka_bootstrap() -> str | None:
    bootstrap = os.environ.get("KHAIBAO_TEST_KAFKA_BOOTSTRAP")
    if bootstrap:
        host, _, port = bootstrap.rpartition(":")
        return bootstrap if _reachable(host, int(port)) else None
    if docker_available():
        _, kafka = _containers()
        return f"{kafka.get_container_host_ip()}:{kafka.get_exposed_port(9092)}"
    return None
