"""docker-compose.ha.yml, the Kafka part (issue 19): three combined broker+controller KRaft
nodes with replicated topics, and the five services pointed at all three.

Read as Compose reads an override (``docker compose -f docker-compose.yml -f
docker-compose.ha.yml``): mappings merged key by key, anything else replaced. ``docker
compose config`` validates the pair where a client is installed (skipped elsewhere, as for
the base file)."""
from __future__ import annotations

import subprocess

import pytest

from tests.infra.kafka_cluster import MIN_INSYNC_REPLICAS, REPLICATED, REPLICATION_FACTOR

from .support import ROOT, SERVICES, Replace, _environment, _load_yaml
from .test_compose import _compose_cli

NODES = {"kafka": 1, "kafka-2": 2, "kafka-3": 3}


def merge(base: object, override: object) -> object:
    """Compose's merge of an override file, for what these files use."""
    if isinstance(base, dict) and isinstance(override, dict) and not isinstance(override, Replace):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


@pytest.fixture(scope="module")
def compose() -> dict:
    return merge(_load_yaml(ROOT / "docker-compose.yml"), _load_yaml(ROOT / "docker-compose.ha.yml"))


def test_three_combined_nodes_of_one_cluster(compose):
    base = _load_yaml(ROOT / "docker-compose.yml")["services"]["kafka"]
    voters = {f"{node_id}@{name}:9093" for name, node_id in NODES.items()}
    cluster_ids = set()
    for name, node_id in NODES.items():
        node = compose["services"][name]
        env = _environment(node)
        assert node["image"] == base["image"], "the three nodes run the base file's Kafka"
        assert env["KAFKA_NODE_ID"] == str(node_id)
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert node["healthcheck"]["test"] and node["command"] == base["command"], name
        assert any(str(v).endswith(":/var/lib/kafka/data") for v in node["volumes"]), name
        cluster_ids.add(env["CLUSTER_ID"])
    assert len(cluster_ids) == 1
    volumes = [str(compose["services"][n]["volumes"][0]).split(":")[0] for n in NODES]
    assert len(set(volumes)) == 3 and all(v in compose["volumes"] for v in volumes), "one data volume per node"


def test_topics_are_replicated_and_never_elect_an_unclean_leader(compose):
    for name in NODES:
        env = _environment(compose["services"][name])
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == str(REPLICATION_FACTOR)
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == str(MIN_INSYNC_REPLICAS)
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        for key in ("OFFSETS_TOPIC_REPLICATION_FACTOR", "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                    "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR"):
            assert env[f"KAFKA_{key}"] == str(REPLICATION_FACTOR), key
        for key in ("TRANSACTION_STATE_LOG_MIN_ISR", "SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"):
            assert env[f"KAFKA_{key}"] == str(MIN_INSYNC_REPLICAS), key


def test_the_test_cluster_runs_the_settings_of_production(compose):
    """tests/infra/kafka_cluster.py (CI, bench.ha) and the HA compose file agree."""
    env = _environment(compose["services"]["kafka"])
    for key, value in REPLICATED.items():
        variable = "KAFKA_" + key.upper().replace(".", "_")
        if variable in env:
            assert env[variable] == value, key
    assert {"default.replication.factor", "min.insync.replicas", "unclean.leader.election.enable"} <= set(REPLICATED)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_use_all_three_nodes_and_replicate_their_topics(compose, name):
    service = compose["services"][name]
    env = _environment(service)
    assert env["KHAIBAO_BUS_URL"] == "kafka://" + ",".join(f"{n}:9092" for n in NODES)
    assert env["KHAIBAO_KAFKA_REPLICATION_FACTOR"] == str(REPLICATION_FACTOR)
    assert env["KHAIBAO_KAFKA_MIN_INSYNC_REPLICAS"] == str(MIN_INSYNC_REPLICAS)
    # The base file's settings are still there (the override adds, it does not replace).
    assert env["KHAIBAO_ENVIRONMENT"] == "production"
    assert env[f"KHAIBAO_{name.upper()}_DATABASE_URL"]
    for node in NODES:
        assert service["depends_on"][node]["condition"] == "service_healthy", node
    assert service["depends_on"]["postgres-a"]["condition"] == "service_healthy"


def test_the_settings_the_override_names_exist():
    from libs.common.settings import CommonSettings

    fields = CommonSettings.model_fields
    assert fields["kafka_replication_factor"].default == 1, "one broker stays the default"
    assert fields["kafka_min_insync_replicas"].default is None


def test_docker_compose_config_validates_with_the_ha_override():
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run([*cli, "-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker-compose.ha.yml"),
                             "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
