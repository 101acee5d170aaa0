"""Which real engines the tests can use, decided in well under a second.

1. A Docker engine answers: testcontainers start PostgreSQL and Kafka.
2. Otherwise the servers that .ci/run (or a developer) started locally, named by
   KHAIBAO_TEST_POSTGRES_URL and KHAIBAO_TEST_KAFKA_BOOTSTRAP.
3. Otherwise the engine suites skip, loudly; with KHAIBAO_REQUIRE_ENGINES=1 they fail.
"""
from __future__ import annotations

import os
import socket
from functools import lru_cache

import pytest


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


@lru_cache(maxsize=1)
def _containers():
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    postgres = PostgresContainer("postgres:16", username="khaibao", password="khaibao", dbname="postgres")
    kafka = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
    postgres.start()
    kafka.start()
    return postgres, kafka


def postgres_url() -> str | None:
    """A superuser URL (``postgresql://…/postgres``), or None."""
    url = os.environ.get("KHAIBAO_TEST_POSTGRES_URL")
    if url:
        return url
    if docker_available():
        postgres, _ = _containers()
        return postgres.get_connection_url().replace("postgresql+psycopg2", "postgresql")
    return None


def kafka_bootstrap() -> str | None:
    bootstrap = os.environ.get("KHAIBAO_TEST_KAFKA_BOOTSTRAP")
    if bootstrap:
        host, _, port = bootstrap.rpartition(":")
        return bootstrap if _reachable(host, int(port)) else None
    if docker_available():
        _, kafka = _containers()
        return kafka.get_bootstrap_server()
    return None
