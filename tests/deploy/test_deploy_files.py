"""The deployment files: docker-compose.yml, Prometheus rules and config, Grafana.

The promtool checks need ``promtool`` on PATH (Debian package ``prometheus``); without it
they are skipped, unless ``KHAIBAO_REQUIRE_ENGINES=1`` makes a missing tool a failure.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"

SERVICES = {
    "intake": 8101,
    "provisioning": 8102,
    "declaration": 8103,
    "notification": 8104,
    "reporting": 8105,
}

# The metric names every service exposes (the contract), plus `up`, which Prometheus
# itself writes for every scraped target.
CONTRACT_METRICS = {
    "khaibao_http_requests_total",
    "khaibao_http_request_duration_seconds",
    "khaibao_events_published_total",
    "khaibao_events_consumed_total",
    "khaibao_events_failed_total",
    "khaibao_events_dead_lettered_total",
    "khaibao_outbox_backlog",
    "khaibao_consumer_lag",
}
PROMETHEUS_METRICS = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# --- helpers -------------------------------------------------------------------------

def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not on PATH (Debian: apt-get install prometheus)"
    if os.environ.get("KHAIBAO_REQUIRE_ENGINES") == "1":
        pytest.fail(f"{message}, and KHAIBAO_REQUIRE_ENGINES=1 forbids skipping")
    pytest.skip(message)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _load_yaml(path: Path):
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load_yaml(ROOT / "docker-compose.yml")


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _command(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _strip_labels_and_ranges(expr: str) -> str:
    """A PromQL expression without strings, label matchers, ranges and grouping clauses."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    expr = re.sub(r"\{[^{}]*\}", " ", expr)
    expr = re.sub(r"\[[^\[\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    return expr


PROMQL_KEYWORDS = {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring",
                   "group_left", "group_right", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions and keywords left out)."""
    stripped = _strip_labels_and_ranges(expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", stripped):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    # A selector written only as {__name__="..."} names its metric inside the braces.
    names.update(re.findall(r'__name__\s*=~?\s*"([^"]+)"', expr))
    return names


def _base_metric(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in CONTRACT_METRICS:
            return name[: -len(suffix)]
    return name


def _dashboard_queries(dashboard: dict) -> list[str]:
    queries = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append(target["expr"])
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            inner = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
            queries.append(inner.group(1) if inner else query)
    return queries


def _alert_rules() -> list[dict]:
    rules = _load_yaml(PROMETHEUS / "alerts.yml")
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


# --- promtool ----------------------------------------------------------------------------

def test_promtool_alert_unit_tests_pass():
    promtool = _require_tool("promtool")
    result = _run(promtool, "test", "rules", "deploy/prometheus/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules():
    promtool = _require_tool("promtool")
    result = _run(promtool, "check", "rules", "deploy/prometheus/alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config():
    promtool = _require_tool("promtool")
    result = _run(promtool, "check", "config", "deploy/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_are_valid_promql(tmp_path):
    """Each dashboard query, Grafana variables filled in, parses as PromQL."""
    promtool = _require_tool("promtool")
    dashboard = json.loads((DEPLOY / "grafana/dashboards/khaibao.json").read_text(encoding="utf-8"))
    rules = []
    for index, expr in enumerate(_dashboard_queries(dashboard)):
        expr = (expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
                .replace("$__interval", "1m").replace("$service", ".*"))
        rules.append({"record": f"khaibao:dashboard_query_{index}", "expr": expr})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    tests = _load_yaml(PROMETHEUS / "alerts_test.yml")
    assert tests["rule_files"] == ["alerts.yml"]
    firing, quiet = set(), set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in _alert_rules()}
    assert {"OutboxBacklogGrowing", "ConsumerLagHigh", "HighErrorRate", "ServiceDown",
            "EventsDeadLettered"} <= alerts
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown quiet"


def test_alerts_have_severity_and_bilingual_summary():
    for rule in _alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        summary = rule["annotations"]["summary"]
        vietnamese, _, english = summary.partition(" / ")
        assert vietnamese and english, f"{rule['alert']}: summary is not 'Vietnamese / English'"
        assert re.search(r"[À-ỹ]", vietnamese), f"{rule['alert']}: no Vietnamese in the summary"


def test_alert_expressions_use_contract_metrics_only():
    for rule in _alert_rules():
        names = {_base_metric(n) for n in promql_metric_names(rule["expr"])}
        assert names, rule["alert"]
        assert names <= CONTRACT_METRICS | PROMETHEUS_METRICS, (rule["alert"], names)


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
    assert "KHAIBAO_SECRET_KEY" in env
    assert env["KHAIBAO_AUTH_PUBLIC_KEY_FILE"].startswith("/run/secrets/")
    assert env["PROMETHEUS_MULTIPROC_DIR"]
    url = env[f"KHAIBAO_{name.upper()}_DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://")
    assert url.endswith(f"@postgres:5432/khaibao_{name}")
    others = [s for s in SERVICES if s != name]
    assert not any(f"KHAIBAO_{o.upper()}_DATABASE_URL" in env for o in others), \
        "a service must not be given another service's database"

    assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"


def test_only_provisioning_gets_the_private_key(compose):
    for name in SERVICES:
        service = compose["services"][name]
        env = _environment(service)
        secrets = [s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])]
        assert "auth_public_key" in secrets
        if name == "provisioning":
            assert "auth_private_key" in secrets
            assert env["KHAIBAO_AUTH_PRIVATE_KEY_FILE"] == "/run/secrets/auth_private_key"
        else:
            assert "auth_private_key" not in secrets
            assert "KHAIBAO_AUTH_PRIVATE_KEY_FILE" not in env
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./deploy/secrets/")


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


def test_prometheus_discovers_every_replica_through_dns():
    config = _load_yaml(PROMETHEUS / "prometheus.yml")
    discovered = {}
    for job in config["scrape_configs"]:
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
    assert "pip install ." in dockerfile
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*/healthz", dockerfile, flags=re.MULTILINE | re.DOTALL)


# --- Grafana dashboard ---------------------------------------------------------------------

def test_dashboard_uses_contract_metrics_only():
    dashboard = json.loads((DEPLOY / "grafana/dashboards/khaibao.json").read_text(encoding="utf-8"))
    queries = _dashboard_queries(dashboard)
    assert queries
    used = set()
    for query in queries:
        names = {_base_metric(n) for n in promql_metric_names(query)}
        assert names, f"no metric in {query!r}"
        unknown = names - CONTRACT_METRICS - PROMETHEUS_METRICS
        assert not unknown, f"{query!r} uses metrics outside the contract: {unknown}"
        used |= names
    # The panels the operators asked for.
    assert {"up", "khaibao_http_requests_total", "khaibao_http_request_duration_seconds",
            "khaibao_events_published_total", "khaibao_events_consumed_total",
            "khaibao_events_dead_lettered_total", "khaibao_outbox_backlog",
            "khaibao_consumer_lag"} <= used
    assert any("histogram_quantile(0.99" in q for q in queries), "no p99 latency panel"


def test_metric_name_extraction():
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (service, le) (rate(khaibao_http_request_duration_seconds_bucket'
        '{service=~"$service", route!="/x"}[$__rate_interval])))'
    ) == {"khaibao_http_request_duration_seconds_bucket"}
    assert promql_metric_names("a_total unless a_total offset 10m or increase(b[5m]) > 0") == {"a_total", "b"}
    assert promql_metric_names('sum by (service) (up{job="khaibao"}) and on (service) c') == {"up", "c"}


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
    env = {**os.environ,
           "KHAIBAO_DB_PASSWORD": "0123456789abcdef",
           "KHAIBAO_SECRET_KEY": "x" * 48}
    result = subprocess.run([*cli, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
