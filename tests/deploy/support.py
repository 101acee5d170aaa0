"""Shared by the tests of the deployment files: paths, the metrics the code exports, and
helpers to read YAML, run tools and take PromQL expressions apart."""
from __future__ import annotations

import functools
import importlib
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
ALERTMANAGER = DEPLOY / "alertmanager"
RUNBOOK = DEPLOY / "RUNBOOK.md"

SERVICES = {
    "intake": 8101,
    "provisioning": 8102,
    "declaration": 8103,
    "notification": 8104,
    "reporting": 8105,
}

# The metrics the services export are not listed by hand: they are what the code registers
# in prometheus_client's default registry once the shared observability module and every
# service's application (which imports its routes, workers and handlers) are imported.
SERVICE_MODULES = ("libs.common.observability", *(f"services.{s}.app" for s in SERVICES))
# Series a scraped sample may carry, by metric type (a family "x" of type counter is
# exported as x_total, a histogram as x_bucket, x_sum and x_count).
SERIES_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"),
                   "summary": ("", "_sum", "_count"), "info": ("_info",)}
# Series Prometheus writes itself: `up` for every target, ALERTS for the alerting rules.
PROMETHEUS_METRICS = {"up", "ALERTS", "ALERTS_FOR_STATE"}


@functools.cache
def exported_metrics() -> dict[str, str]:
    """Every khaibao_* metric family the code registers: name -> type."""
    for module in SERVICE_MODULES:
        importlib.import_module(module)
    from prometheus_client import REGISTRY

    return {family.name: family.type for family in REGISTRY.collect() if family.name.startswith("khaibao_")}


def exported_series() -> set[str]:
    """The series names a query may select: each family with its type's suffixes."""
    return {name + suffix for name, kind in exported_metrics().items() for suffix in SERIES_SUFFIXES[kind]}


def unknown_metrics(expr: str) -> set[str]:
    """The metric names of a PromQL expression that neither the code nor Prometheus exports."""
    return promql_metric_names(expr) - exported_series() - PROMETHEUS_METRICS


# --- helpers -------------------------------------------------------------------------

def _require_tool(name: str, package: str = "prometheus") -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not on PATH (Debian: apt-get install {package})"
    if os.environ.get("KHAIBAO_REQUIRE_ENGINES") == "1":
        pytest.fail(f"{message}, and KHAIBAO_REQUIRE_ENGINES=1 forbids skipping")
    pytest.skip(message)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


class Replace(dict):
    """A mapping an override file tags ``!override``: it replaces the base file's, not merged."""


class _ComposeLoader(yaml.SafeLoader):
    """Compose's own tags read as plain values (``!override`` mappings as ``Replace``)."""


_ComposeLoader.add_multi_constructor("!", lambda loader, suffix, node: (
    Replace(loader.construct_mapping(node)) if isinstance(node, yaml.MappingNode) and suffix == "override" else
    loader.construct_mapping(node) if isinstance(node, yaml.MappingNode) else
    loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else loader.construct_scalar(node)))


def _load_yaml(path: Path):
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_ComposeLoader)


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


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


def _dashboard() -> dict:
    return json.loads((DEPLOY / "grafana/dashboards/khaibao.json").read_text(encoding="utf-8"))


def _alert_rules() -> list[dict]:
    rules = _load_yaml(PROMETHEUS / "alerts.yml")
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
