"""The engines the tests start in Docker are the ones CI and production run: Kafka of
deploy/kafka/pom.xml's version (the official apache/kafka image, as docker-compose.yml), and
docker-compose.yml's PostgreSQL. No Docker engine is needed: only the names are checked."""
from __future__ import annotations

import re

from tests import engines

from .support import ROOT, _load_yaml


def _pom_kafka_version() -> str:
    pom = (ROOT / "deploy/kafka/pom.xml").read_text(encoding="utf-8")
    found = re.findall(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom)
    assert len(found) == 1, found
    return found[0]


def test_kafka_image_is_the_official_one_of_the_version_ci_runs():
    assert engines.kafka_version() == _pom_kafka_version()
    assert engines.kafka_image() == f"apache/kafka:{_pom_kafka_version()}"


def test_compose_runs_the_same_kafka_as_ci():
    compose = _load_yaml(ROOT / "docker-compose.yml")
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{_pom_kafka_version()}", \
        "align docker-compose.yml's kafka image with kafka.version in deploy/kafka/pom.xml"


def test_postgres_image_is_the_one_compose_runs():
    compose = _load_yaml(ROOT / "docker-compose.yml")
    image = engines.postgres_image()
    assert image == compose["services"]["postgres"]["image"]
    name, _, tag = image.partition(":")
    assert name == "postgres" and tag.split(".")[0].isdigit()


def test_engines_name_no_image_of_their_own_and_no_deprecated_module():
    source = (ROOT / "tests/engines.py").read_text(encoding="utf-8")
    assert not re.search(r"[\"'](apache/kafka|confluentinc/[\w-]+|postgres):\d", source)
    # testcontainers 4.x moved its modules under testcontainers.community; the old paths warn.
    assert not re.search(r"from testcontainers\.(kafka|postgres) import", source)
