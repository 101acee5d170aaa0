"""WCAG 2.1 A/AA checks of a page with axe-core (axe-playwright-python ships axe.min.js in
its wheel: it is injected into the page, nothing is fetched at run time).

``check_a11y(page, name)`` runs axe on the page as it is shown, at phone (390x844) and at
desktop (1280x800) size (the viewport is resized, the page is not reloaded, so the started
system and the signed-in session of the calling test are reused), asserts no violation of
the A and AA rules, prints one line per viewport::

    axe declaration/form phone: 0 violations (31 rules passed)

and appends the result to ``test-results/a11y/axe.jsonl`` (one JSON object a line: page,
viewport, url, violations, passes); the same lines are repeated in pytest's terminal summary
(section "axe-core", tests/browser/conftest.py), so CI output shows what was checked.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe

from tests.services.conftest import REPO_ROOT

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
RESULTS = REPO_ROOT / "test-results" / "a11y" / "axe.jsonl"

_axe = Axe()
SUMMARY: list[str] = []  # this session's lines, for the terminal summary


def describe(violations: list[dict]) -> str:
    """Each violation's id, impact, help and the targets of its nodes, one block each."""
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:8]:
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    {', '.join(map(str, node['target']))}: {summary[:300]}")
    return "\n".join(lines)


def run_axe(page) -> dict:  # noqa: ANN001 - a sync Playwright Page
    """axe-core's results for the page as shown (violations and passes of the A/AA rules)."""
    options = {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations", "passes"]}
    return _axe.run(page, options=options).response


def record(entry: dict, results: Path = RESULTS) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, ensure_ascii=False) + "\n")


def check_a11y(page, name: str, viewports: tuple[str, ...] = ("phone", "desktop")) -> None:  # noqa: ANN001
    """Assert 0 WCAG 2.1 A/AA violations on ``page`` at each of ``viewports``; the page's own
    viewport is restored afterwards."""
    original = page.viewport_size
    failures = []
    try:
        for viewport in viewports:
            page.set_viewport_size(VIEWPORTS[viewport])
            page.wait_for_timeout(50)  # one layout pass: media queries applied
            response = run_axe(page)
            violations = response["violations"]
            passed = len(response["passes"])
            line = f"axe {name} {viewport}: {len(violations)} violations ({passed} rules passed)"
            print(line)
            SUMMARY.append(line)
            record({"page": name, "viewport": viewport, "url": page.url.split("?")[0],
                    "violations": [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                                    "targets": [n["target"] for n in v["nodes"]]} for v in violations],
                    "passes": passed, "worker": os.environ.get("PYTEST_XDIST_WORKER", "")})
            if violations:
                failures.append(f"{viewport} ({page.url.split('?')[0]}):\n{describe(violations)}")
    finally:
        if original:
            page.set_viewport_size(original)
    assert not failures, f"axe {name}: WCAG 2.1 A/AA violations\n" + "\n".join(failures)
