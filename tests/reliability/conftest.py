"""Fixtures of the reliability suite (issue 8): short in CI, long on demand.

- ``LONG``: ``KHAIBAO_RELIABILITY_LONG=1`` (``python -m bench.reliability --long``) asks for
  the long form (1,000+ generated cases per service, the full fault durations);
- ``record_figure(part, **figures)``: a row of the figures table. Rows are appended as JSON
  lines to the file named by ``KHAIBAO_RELIABILITY_FIGURES`` (bench/reliability.py sets it)
  and to test-results/reliability-figures.jsonl;
- the fixtures of tests/services/conftest.py (keys, per-service settings on temporary
  SQLite and one embedded bus, token minting) are available here too.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.services.conftest import (  # noqa: F401 - fixtures re-exported for this suite
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    OTHER_COMMUNE,
    OTHER_DISTRICT,
    OTHER_DISTRICT_COMMUNE,
    Minter,
    all_settings,
    build_settings,
    client_for,
    demo_system,
    eventually,
    keys,
    make_keys,
    make_settings,
    mint,
    registration,
    run_services,
    service_url,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("KHAIBAO_RELIABILITY_LONG", "") not in ("", "0", "false", "no")


def record_figure(part: str, **figures: object) -> None:
    """One row of the reliability figures table (see bench/reliability.py)."""
    row = json.dumps({"part": part, "long": LONG, "at": time.time(), **figures}, ensure_ascii=False, default=str)
    targets = [REPO_ROOT / "test-results" / "reliability-figures.jsonl"]
    if os.environ.get("KHAIBAO_RELIABILITY_FIGURES"):
        targets.append(Path(os.environ["KHAIBAO_RELIABILITY_FIGURES"]))
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as fh:
            fh.write(row + "\n")
