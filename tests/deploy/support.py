"""Shared by the tests of the deployment files: paths, the metric contract, and helpers
to read YAML, run tools and take PromQL expressions apart."""
from __future__ import annotations

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
