"""The deployment: docker-compose.yml (services, scaling, environment, keys, health checks,
Kafka, PostgreSQL, Prometheus, Grafana, the proxy) and the Dockerfile; ``docker compose
config`` where a client is installed."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .support import DEPLOY, PROMETHEUS, ROOT, SERVICES, _command, _environment, _load_yaml


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load_yaml(ROOT / "docker-compose.yml")


# --- docker-compose.yml ------------------------------------------------------------------

def test_five_services_exist(compose):
    assert set(SERVICES) <= set(compose["services"])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_is_scalable(compose, name):
    service = compose["services"][name]
    assert "container_name" not in service, "a fixed container_name forbids --scale"
    assert not service.get("ports"), "only the proxy publishes ports; a host port forbids --scale"
    assert "network_mode" not in service


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_command_and_environment(compose, name):
    service = compose["services"][name]
    command = _command(service)
    assert command[:3] == ["khaibao", "serve", name]
    assert command[command.index("--port") + 1] == str(SERVICES[name])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert "--workers" in command

    env = _environment(service)
    assert env["KHAIBAO_ENVIRONMENT"] == "production"
    assert env["KHAIBAO_BUS_URL"] == "kafka://kafka:9092"
    assert "KHAIBAO_SECRET_KEY" not in env, "the secret key comes from a file"
    assert env["KHAIBAO_SECRET_KEY_FILE"] == "/run/secrets/secret_key"
    assert env["KHAIBAO_DATABASE_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert env["KHAIBAO_AUTH_PUBLIC_KEY_FILE"] == "/run/secrets/token_public"
    assert env["KHAIBAO_FIELD_KEYS_FILE"] == "/run/secrets/field_keys"
    assert env["KHAIBAO_INDEX_KEY_FILE"] == "/run/secrets/index_key"
    assert env["PROMETHEUS_MULTIPROC_DIR"]
    url = env[f"KHAIBAO_{name.upper()}_DATABASE_URL"]
    assert url == f"postgresql+asyncpg://khaibao@postgres:5432/khaibao_{name}", "no password in the URL"
    others = [s for s in SERVICES if s != name]
    assert not any(f"KHAIBAO_{o.upper()}_DATABASE_URL" in env for o in others), \
        "a service must not be given another service's database"

    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"


# Each service mounts only the secrets it reads: the token private key for provisioning
# alone, the pass key for declaration alone, the credentials private key for notification
# alone; the credentials public key for provisioning (initial passwords) and declaration
# (the person of a red declaration or a gate case, sealed on the bus).
# field_keys and index_key: every service's personal fields are encrypted at rest (fieldcrypt).
SHARED_SECRETS = {"token_public", "secret_key", "db_password", "field_keys", "index_key"}
OWN_SECRETS = {
    "intake": {},
    "provisioning": {"token_private": "KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE",
                     "credentials_public": "KHAIBAO_PROVISIONING_CREDENTIALS_PUBLIC_KEY_FILE"},
    "declaration": {"pass_private": "KHAIBAO_DECLARATION_PASS_PRIVATE_KEY_FILE",
                    "credentials_public": "KHAIBAO_DECLARATION_SEALING_PUBLIC_KEY_FILE"},
    "notification": {"credentials_private": "KHAIBAO_NOTIFICATION_CREDENTIALS_PRIVATE_KEY_FILE"},
    "reporting": {},
}
SECRET_FILES = {
    "token_private": "token_private.pem", "token_public": "token_public.pem", "pass_private": "pass_private.pem",
    "credentials_private": "credentials_private.pem", "credentials_public": "credentials_public.pem",
    "secret_key": "secret_key", "db_password": "db_password", "grafana_admin_password": "grafana_admin_password",
    "field_keys": "field_keys", "index_key": "index_key",
}


def _secrets(service: dict) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_gets_only_the_secrets_it_needs(compose, name):
    service = compose["services"][name]
    env = _environment(service)
    assert _secrets(service) == SHARED_SECRETS | set(OWN_SECRETS[name])
    for secret, variable in OWN_SECRETS[name].items():
        assert env[variable] == f"/run/secrets/{secret}"
    others = [(s, v) for other in SERVICES if other != name for s, v in OWN_SECRETS[other].items()]
    for secret, variable in others:
        assert secret in OWN_SECRETS[name] or secret not in _secrets(service)
        assert variable not in env
    assert "KHAIBAO_AUTH_PRIVATE_KEY_FILE" not in env
    # Every /run/secrets/ path a variable names is a secret the service mounts.
    for variable, value in env.items():
        if value.startswith("/run/secrets/"):
            assert value.removeprefix("/run/secrets/") in _secrets(service), variable


def test_the_secrets_are_the_files_keys_init_writes(compose):
    assert {k: v["file"] for k, v in compose["secrets"].items()} == {
        k: f"./deploy/secrets/{v}" for k, v in SECRET_FILES.items()}


def test_postgres_reads_its_password_from_the_secret(compose):
    postgres = compose["services"]["postgres"]
    env = _environment(postgres)
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert "POSTGRES_PASSWORD" not in env
    assert _secrets(postgres) == {"db_password"}


SECRET_NAME = re.compile(r"PASSWORD|SECRET|PRIVATE|TOKEN|_KEY\b|_KEY_", re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)


def test_no_environment_value_holds_a_secret(compose):
    for name, service in compose["services"].items():
        for variable, value in _environment(service).items():
            assert not URL_WITH_PASSWORD.search(value), f"{name}: {variable} holds a URL with a password"
            if SECRET_NAME.search(variable):
                assert variable.endswith("_FILE") and value.startswith("/run/secrets/"), \
                    f"{name}: {variable} must name a file under /run/secrets, not hold the secret"
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert ":?" not in text, "no value is required from the environment: secrets are files"
    assert "KHAIBAO_DB_PASSWORD" not in text and "KHAIBAO_SECRET_KEY:" not in text


def test_keys_init_writes_every_secret_compose_mounts(compose, tmp_path, capsys):
    from libs.common.cli import main

    assert main(["keys", "init", str(tmp_path / "secrets")]) == 0
    written = capsys.readouterr().out.split()
    for name, secret in compose["secrets"].items():
        relative = secret["file"].removeprefix("./deploy/secrets/")
        path = tmp_path / "secrets" / relative
        assert path.is_file(), f"secret {name}: {secret['file']} is not written by keys init"
        assert relative in written
        assert path.stat().st_mode & 0o777 == 0o600


def test_notification_has_smtp_settings(compose):
    env = _environment(compose["services"]["notification"])
    assert "KHAIBAO_SMTP_HOST" in env and "KHAIBAO_SMTP_PORT" in env


def test_every_compose_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name


def test_only_the_proxy_publishes_ports(compose):
    publishing = {name for name, s in compose["services"].items() if s.get("ports")}
    assert publishing == {"proxy"}
    published = " ".join(str(p) for p in compose["services"]["proxy"]["ports"])
    for port in SERVICES.values():
        assert str(port) in published or "8100-8105" in published


def test_kafka_is_kraft_single_node(compose):
    assert not any("zookeeper" in name for name in compose["services"])
    kafka = compose["services"]["kafka"]
    image, _, tag = kafka["image"].partition(":")
    assert image == "apache/kafka"
    assert tag.split(".")[0] == "4"
    env = _environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[key] == "1", key


def test_postgres_creates_the_five_databases(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["image"].split(":")[1].startswith("16")
    assert any("deploy/postgres/init:/docker-entrypoint-initdb.d" in str(v) for v in postgres["volumes"])
    sql = (DEPLOY / "postgres/init/01-databases.sql").read_text(encoding="utf-8")
    created = set(re.findall(r"CREATE DATABASE\s+(\w+)", sql, flags=re.IGNORECASE))
    assert created == {f"khaibao_{name}" for name in SERVICES}


def test_prometheus_mounts_config_and_rules(compose):
    prometheus = compose["services"]["prometheus"]
    mounts = {}
    for volume in prometheus["volumes"]:
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    command = " ".join(prometheus.get("command", []))
    config_target = re.search(r"--config\.file=(\S+)", command).group(1)
    assert mounts[config_target] == "./deploy/prometheus/prometheus.yml"
    config = _load_yaml(PROMETHEUS / "prometheus.yml")
    for rule_file in config["rule_files"]:
        target = str(Path(config_target).parent / rule_file)
        assert mounts.get(target) == f"./deploy/prometheus/{rule_file}", f"rules {rule_file} not mounted"
        assert (PROMETHEUS / rule_file).is_file()


def test_alertmanager_runs_with_the_repository_config(compose):
    alertmanager = compose["services"]["alertmanager"]
    assert alertmanager["image"].startswith("prom/alertmanager:")
    command = " ".join(alertmanager["command"])
    config = re.search(r"--config\.file=(\S+)", command).group(1)
    mounts = dict(str(v).split(":")[1::-1] for v in alertmanager["volumes"])  # target -> source
    assert mounts["/etc/alertmanager"] == "./deploy/alertmanager"
    assert config == "/etc/alertmanager/alertmanager.yml" and (DEPLOY / "alertmanager/alertmanager.yml").is_file()
    assert "alertmanager-data" in compose["volumes"] and mounts["/alertmanager"] == "alertmanager-data"
    # Prometheus reaches it by its compose name (deploy/prometheus/prometheus.yml `alerting:`).
    targets = [t for m in _load_yaml(PROMETHEUS / "prometheus.yml")["alerting"]["alertmanagers"]
               for c in m["static_configs"] for t in c["targets"]]
    assert targets == ["alertmanager:9093"]


def test_prometheus_discovers_every_replica_through_dns():
    config = _load_yaml(PROMETHEUS / "prometheus.yml")
    discovered = {}
    for job in config["scrape_configs"]:
        if job["job_name"] != "khaibao":
            continue  # the engines' exporters (job postgres: tests/deploy/test_postgres_ha_deploy.py)
        for sd in job.get("dns_sd_configs", []):
            assert sd.get("type", "SRV") == "A"
            for name in sd["names"]:
                discovered[name] = sd["port"]
    assert discovered == SERVICES


def test_grafana_is_provisioned(compose):
    grafana = compose["services"]["grafana"]
    volumes = " ".join(str(v) for v in grafana["volumes"])
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning" in volumes
    datasources = _load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    providers = _load_yaml(DEPLOY / "grafana/provisioning/dashboards/khaibao.yml")
    dashboards_path = providers["providers"][0]["options"]["path"]
    assert f"./deploy/grafana/dashboards:{dashboards_path}" in volumes


def test_proxy_routes_to_every_service():
    conf = (DEPLOY / "nginx/nginx.conf").read_text(encoding="utf-8")
    assert "resolver 127.0.0.11" in conf, "resolve at request time so that new replicas get traffic"
    for name, port in SERVICES.items():
        assert re.search(rf"listen {port};\s*set \$upstream {name}:{port};", conf), name


def test_dockerfile():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, flags=re.MULTILINE)
    assert re.search(r"pip install --require-hashes -r requirements/main\.txt$", dockerfile, flags=re.MULTILINE)
    assert re.search(r"pip install --no-deps( --no-build-isolation)? \.$", dockerfile, flags=re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*/healthz", dockerfile, flags=re.MULTILINE | re.DOTALL)


# --- docker compose, where a client is installed ---------------------------------------------

def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_validates():
    """`docker compose config` parses and validates the file (no engine needed)."""
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = dict(os.environ)
    result = subprocess.run([*cli, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kafka_retention_is_derived_from_the_data_retention(compose):
    """Issue 17: one setting for how long personal data and the bus's messages live."""
    kafka = compose["services"]["kafka"]
    env = kafka.get("environment") or {}
    assert "KAFKA_LOG_RETENTION_HOURS" not in env and "KAFKA_LOG_RETENTION_MS" not in env
    command = " ".join(kafka["command"])
    assert "KAFKA_LOG_RETENTION_HOURS=$$(( ${KHAIBAO_DATA_RETENTION_DAYS:-21} * 24 ))" in command
    assert command.rstrip().endswith("exec /etc/kafka/docker/run")
    shared = compose["x-khaibao-env"]
    assert shared["KHAIBAO_DATA_RETENTION_DAYS"] == "${KHAIBAO_DATA_RETENTION_DAYS:-21}"
    from libs.common.settings import CommonSettings

    assert CommonSettings.model_fields["data_retention_days"].default == 21
