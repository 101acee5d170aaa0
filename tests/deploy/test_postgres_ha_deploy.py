"""Issue 19: the deployment of the PostgreSQL pair and its backups.

docker-compose.ha.yml (the PostgreSQL part: services on multi-host URLs), pgBackRest's
config and backup script (retention from the data-retention setting), the Prometheus rules
of deploy/prometheus/alerts_postgres.yml (promtool unit tests, bilingual summaries, runbook
sections) and the exporter's queries they use.
"""
from __future__ import annotations

import re
import subprocess

import yaml

from libs.common.db import asyncpg_options
from libs.common.settings import SERVICES, ServiceSettings

from .support import DEPLOY, PROMETHEUS, ROOT, _load_yaml, _require_tool, _run


def _ha_compose() -> dict:
    return _load_yaml(ROOT / "docker-compose.ha.yml")


def test_every_service_connects_to_the_pair_with_a_multi_host_url() -> None:
    services = _ha_compose()["services"]
    for service in SERVICES:
        url = services[service]["environment"][f"KHAIBAO_{service.upper()}_DATABASE_URL"]
        options = asyncpg_options(url)
        assert options["host"] == ["postgres-a", "postgres-b"] and options["port"] == [5432, 5432], url
        assert options["target_session_attrs"] == "read-write"
        assert options["database"] == f"khaibao_{service}"
        assert options["password"] is None  # from KHAIBAO_DATABASE_PASSWORD_FILE
        assert "postgres-a" in services[service]["depends_on"]
    assert services["postgres"]["profiles"] == ["single"]


def test_backups_keep_what_the_data_retention_setting_allows() -> None:
    retention = ServiceSettings.model_fields["data_retention_days"].default
    conf = (DEPLOY / "pgbackrest" / "pgbackrest.conf").read_text(encoding="utf-8")
    assert f"repo1-retention-full={retention}\n" in conf
    assert "repo1-retention-full-type=time" in conf
    script = DEPLOY / "pgbackrest" / "backup.sh"
    assert "KHAIBAO_DATA_RETENTION_DAYS:-21" in script.read_text(encoding="utf-8")
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    compose = _ha_compose()["services"]["pgbackrest"]
    assert compose["environment"]["KHAIBAO_DATA_RETENTION_DAYS"] == "${KHAIBAO_DATA_RETENTION_DAYS:-21}"


def _rules() -> list[dict]:
    rules = yaml.safe_load((PROMETHEUS / "alerts_postgres.yml").read_text(encoding="utf-8"))
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_unit_tests_of_the_postgres_alerts_pass() -> None:
    promtool = _require_tool("promtool")
    result = _run(promtool, "test", "rules", "deploy/prometheus/alerts_postgres_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    result = _run(promtool, "check", "config", "deploy/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_postgres_alert_is_tested_firing_and_quiet_and_has_its_runbook_section() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_postgres_test.yml").read_text(encoding="utf-8"))
    firing, quiet = set(), set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules()}
    assert {"PostgresNoPrimary", "PostgresStandbyGone", "PostgresStandbyLagging", "BackupTooOld"} <= alerts
    assert alerts <= firing and alerts <= quiet
    runbook = (DEPLOY / "RUNBOOK.md").read_text(encoding="utf-8")
    headings = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    for rule in _rules():
        vietnamese, _, english = rule["annotations"]["summary"].partition(" / ")
        assert english and re.search(r"[À-ỹ]", vietnamese), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["runbook_url"] == f"deploy/RUNBOOK.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in headings, f"no runbook section for {rule['alert']}"


def test_the_alerts_use_the_exporter_queries_and_the_backup_record() -> None:
    queries = yaml.safe_load((DEPLOY / "postgres-exporter" / "queries.yaml").read_text(encoding="utf-8"))
    exported = {"pg_up"} | {f"{name}_{column}" for name, query in queries.items()
                            for metric in query["metrics"] for column in metric}
    exported.add("khaibao_backup_last_success_timestamp_seconds")  # deploy/pgbackrest/backup.sh
    assert "khaibao_backup_last_success_timestamp_seconds{type=" in (
        DEPLOY / "pgbackrest" / "backup.sh").read_text(encoding="utf-8")
    for rule in _rules():
        names = set(re.findall(r"\b(pg_[a-z_]+|khaibao_[a-z_]+)\b", rule["expr"]))
        assert names and names <= exported, (rule["alert"], names - exported)


def test_prometheus_scrapes_the_exporters_of_the_pair() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert "alerts_postgres.yml" in config["rule_files"]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "postgres")
    names = {name for sd in job["dns_sd_configs"] for name in sd["names"]}
    services = _ha_compose()["services"]
    assert names == {"postgres-exporter-a", "postgres-exporter-b"} <= set(services)

