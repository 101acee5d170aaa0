"""Where alerts go: Prometheus -> Alertmanager (e-mail to the on-call address through the
SMTP relay, critical alerts also to the on-call webhook), and the runbook each alert links.

``amtool`` (Debian package ``prometheus-alertmanager``) checks the config and the routes;
without it those tests are skipped, unless ``KHAIBAO_REQUIRE_ENGINES=1``.
"""
from __future__ import annotations

import re

from .support import ALERTMANAGER, PROMETHEUS, RUNBOOK, _alert_rules, _load_yaml, _require_tool, _run

CONFIG = "deploy/alertmanager/alertmanager.yml"


def _receivers() -> dict[str, dict]:
    return {r["name"]: r for r in _load_yaml(ALERTMANAGER / "alertmanager.yml")["receivers"]}


def test_amtool_check_config():
    amtool = _require_tool("amtool", "prometheus-alertmanager")
    result = _run(amtool, "check-config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 receivers" in result.stdout and "1 templates" in result.stdout, result.stdout


def test_amtool_routes_critical_to_the_webhook_and_every_alert_by_email():
    amtool = _require_tool("amtool", "prometheus-alertmanager")

    def receivers(*labels: str) -> list[str]:
        result = _run(amtool, "config", "routes", "test", f"--config.file={CONFIG}", *labels)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.strip().split(",")

    assert receivers("alertname=ServiceDown", "severity=critical", "service=declaration") == [
        "oncall-webhook", "oncall-email"]
    assert receivers("alertname=ConsumerLagNotFalling", "severity=warning") == ["oncall-email"]


def test_both_routes_exist_with_their_destinations():
    config = _load_yaml(ALERTMANAGER / "alertmanager.yml")
    receivers = _receivers()
    email = receivers["oncall-email"]["email_configs"][0]
    assert "@" in email["to"] and email["send_resolved"] is True
    assert config["global"]["smtp_smarthost"] and config["global"]["smtp_from"]
    webhook = receivers["oncall-webhook"]["webhook_configs"][0]
    assert webhook["url"].startswith("https://")
    routes = config["route"]["routes"]
    assert config["route"]["receiver"] == "oncall-email"
    assert {"receiver": "oncall-webhook", "matchers": ['severity="critical"']}.items() <= routes[0].items()
    assert routes[0]["continue"] is True
    # Placeholders the operator must replace, all under the reserved .example domain.
    hosts = [config["global"]["smtp_smarthost"], config["global"]["smtp_from"], email["to"], webhook["url"]]
    assert all(".example" in host for host in hosts), hosts


def test_the_email_carries_the_runbook_link():
    template = (ALERTMANAGER / "templates" / "khaibao.tmpl").read_text(encoding="utf-8")
    assert "{{ .Annotations.runbook_url }}" in template
    assert '{{ template "khaibao.text" . }}' == _receivers()["oncall-email"]["email_configs"][0]["text"]


def test_prometheus_sends_alerts_to_alertmanager():
    config = _load_yaml(PROMETHEUS / "prometheus.yml")
    targets = [t for m in config["alerting"]["alertmanagers"] for s in m["static_configs"] for t in s["targets"]]
    assert targets == ["alertmanager:9093"]


# --- the runbook ----------------------------------------------------------------------------

def _anchor(heading: str) -> str:
    """The anchor GitHub and GitLab give a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _runbook_sections() -> dict[str, str]:
    """Anchor of each heading -> the text up to the next heading."""
    sections, anchor = {}, None
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            anchor = _anchor(heading.group(1))
            sections[anchor] = ""
        elif anchor is not None:
            sections[anchor] += line + "\n"
    return sections


def test_every_alert_links_a_section_of_the_runbook():
    sections = _runbook_sections()
    for rule in _alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        path, _, anchor = url.partition("#")
        assert path == "deploy/RUNBOOK.md", (rule["alert"], url)
        assert anchor == rule["alert"].lower(), (rule["alert"], url)
        assert anchor in sections, f"{rule['alert']}: no heading for #{anchor} in deploy/RUNBOOK.md"


def test_each_runbook_section_says_what_it_means_where_to_look_and_what_to_do():
    sections = _runbook_sections()
    for rule in _alert_rules():
        text = sections[rule["alert"].lower()]
        for part in ("What it means", "Where to look", "What to do"):
            assert f"**{part}**" in text, f"{rule['alert']}: no '{part}' in its runbook section"
        assert "Grafana" in text or "grafana" in text, f"{rule['alert']}: which panel to look at?"


def test_anchor():
    assert _anchor("ServiceDown") == "servicedown"
    assert _anchor("Consumer lag: not falling") == "consumer-lag-not-falling"
