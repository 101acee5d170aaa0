"""The monitoring files: Prometheus rules and config (checked with promtool), and the
Grafana dashboard, against the metric contract of the services.

The promtool checks need ``promtool`` on PATH (Debian package ``prometheus``); without it
they are skipped, unless ``KHAIBAO_REQUIRE_ENGINES=1`` makes a missing tool a failure.
"""
from __future__ import annotations

import json
import re

from .support import (
    CONTRACT_METRICS, DEPLOY, PROMETHEUS, PROMETHEUS_METRICS, _alert_rules, _base_metric, _dashboard_queries,
    _load_yaml, _require_tool, _run, promql_metric_names, yaml,
)


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
