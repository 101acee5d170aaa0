"""The monitoring files: Prometheus rules and config (checked with promtool), Alertmanager's
config (checked with amtool), the runbook, and the Grafana dashboard, against the metrics
the code exports.

The promtool and amtool checks need the tools on PATH (Debian packages ``prometheus`` and
``prometheus-alertmanager``); without them they are skipped, unless
``KHAIBAO_REQUIRE_ENGINES=1`` makes a missing tool a failure.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from .support import (
    DEPLOY, PROMETHEUS, _alert_rules, _dashboard, _dashboard_queries, _load_yaml, _require_tool, _run,
    exported_metrics, exported_series, promql_metric_names, unknown_metrics, yaml,
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
    dashboard = _dashboard()
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


def test_alert_expressions_use_exported_metrics_only():
    for rule in _alert_rules():
        assert promql_metric_names(rule["expr"]), rule["alert"]
        assert not unknown_metrics(rule["expr"]), (rule["alert"], unknown_metrics(rule["expr"]))


# --- Grafana dashboard ---------------------------------------------------------------------

def test_dashboard_uses_exported_metrics_only():
    queries = _dashboard_queries(_dashboard())
    assert queries
    used = set()
    for query in queries:
        names = promql_metric_names(query)
        assert names, f"no metric in {query!r}"
        unknown = unknown_metrics(query)
        assert not unknown, f"{query!r} uses metrics no service exports: {unknown}"
        used |= names
    # The panels the operators asked for.
    assert {"up", "khaibao_http_requests_total", "khaibao_http_request_duration_seconds_bucket",
            "khaibao_events_published_total", "khaibao_events_consumed_total",
            "khaibao_events_dead_lettered_total", "khaibao_outbox_backlog",
            "khaibao_consumer_lag"} <= used
    assert any("histogram_quantile(0.99" in q for q in queries), "no p99 latency panel"
    # The business panels: declarations by result, the commit queue, alerts raised and
    # acknowledged, the acknowledgement time, the notification backlog, sign-ins, retention.
    assert {"khaibao_declarations_stored_total", "khaibao_declaration_commit_queue",
            "khaibao_alerts_raised_total", "khaibao_alert_acknowledge_seconds_count",
            "khaibao_alert_acknowledge_seconds_bucket", "khaibao_notification_backlog",
            "khaibao_signins_total", "khaibao_retention_erased_total"} <= used


def test_a_query_naming_a_metric_nobody_exports_is_caught():
    assert unknown_metrics('sum(rate(khaibao_declarations_total{result="red"}[5m]))') == {
        "khaibao_declarations_total"}
    assert unknown_metrics("khaibao_outbox_backlog_total + khaibao_consumer_lag_bucket") == {
        "khaibao_outbox_backlog_total", "khaibao_consumer_lag_bucket"}  # a gauge has no suffix
    assert unknown_metrics('max(khaibao_outbox_backlog) and on () up and ALERTS{alertname="ServiceDown"}') == set()


def test_the_exported_metrics_come_from_the_code():
    """Read from the registry, with their types: the shared metrics and each service's own."""
    metrics = exported_metrics()
    assert metrics["khaibao_http_requests"] == "counter"
    assert metrics["khaibao_http_request_duration_seconds"] == "histogram"
    assert metrics["khaibao_outbox_backlog"] == "gauge"
    assert metrics["khaibao_declarations_stored"] == "counter"  # services/declaration/batcher.py
    assert metrics["khaibao_declaration_commit_queue"] == "gauge"
    assert metrics["khaibao_signins"] == "counter"  # services/provisioning/tokens.py
    assert metrics["khaibao_notification_backlog"] == "gauge"  # services/notification/delivery.py
    assert metrics["khaibao_alert_acknowledge_seconds"] == "histogram"  # services/notification/alerts.py
    assert metrics["khaibao_retention_erased"] == "counter"
    assert "khaibao_signins_total" in exported_series() and "khaibao_signins" not in exported_series()


MULTIPROCESS_PROBE = """
import importlib, json, sys
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
for module in sys.argv[1:]:
    importlib.import_module(module)
families = {}
for collector in list(REGISTRY._collector_to_names):
    name = getattr(collector, "_name", "")
    if not name.startswith("khaibao_"):
        continue
    families[name] = collector._type
    metric = collector.labels(*["x"] * len(collector._labelnames)) if collector._labelnames else collector
    {"counter": lambda m: m.inc(), "gauge": lambda m: m.set(3),
     "histogram": lambda m: m.observe(0.1), "summary": lambda m: m.observe(0.1)}[collector._type](metric)
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
print(json.dumps({"registered": families,
                  "served": {f.name: sorted({k for s in f.samples for k in s.labels}) for f in registry.collect()}}))
"""


def test_every_metric_is_served_under_prometheus_multiproc_dir(tmp_path):
    """As behind uvicorn workers (compose sets PROMETHEUS_MULTIPROC_DIR): every khaibao metric
    is served by the multiprocess collector, and no gauge is split by process id (each
    gauge says how its workers' values combine: multiprocess_mode)."""
    from .support import ROOT, SERVICE_MODULES

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", MULTIPROCESS_PROBE, *SERVICE_MODULES], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["registered"] == exported_metrics()
    served = probe["served"]
    for name, kind in probe["registered"].items():
        assert name in served, f"{name} is not served under PROMETHEUS_MULTIPROC_DIR"
        if kind == "gauge":
            assert "pid" not in served[name], f"gauge {name} has no multiprocess_mode: one series per worker"


def test_metric_name_extraction():
    assert promql_metric_names(
        'histogram_quantile(0.99, sum by (service, le) (rate(khaibao_http_request_duration_seconds_bucket'
        '{service=~"$service", route!="/x"}[$__rate_interval])))'
    ) == {"khaibao_http_request_duration_seconds_bucket"}
    assert promql_metric_names("a_total unless a_total offset 10m or increase(b[5m]) > 0") == {"a_total", "b"}
    assert promql_metric_names('sum by (service) (up{job="khaibao"}) and on (service) c') == {"up", "c"}
