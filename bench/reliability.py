"""The reliability figures table of issue 8, produced by one command.

    python -m bench.reliability           # short form (the CI sizes), several minutes
    python -m bench.reliability --long    # long form: 1,000+ generated cases per service,
                                          # the full fault durations (Kafka 60 s, SMTP 10 min)

It runs the reliability suite (tests/reliability: authorization matrix, Schemathesis, the
bad-input catalogue, web hardening) with pytest, collects the figures each test records,
then runs the faults under load (bench/reliability_faults.py, when present) and prints one
Markdown table. Exit status 0 only when every part passed with 0 lost, 0 duplicates,
0 server errors and nothing stored from a refused input.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = ["tests/reliability/test_authz_matrix.py", "tests/reliability/test_schemathesis.py",
         "tests/reliability/test_bad_input_text.py", "tests/reliability/test_bad_input_requests.py",
         "tests/reliability/test_bad_input_credentials.py", "tests/reliability/test_web_hardening.py"]
COLUMNS = ("part", "tried", "server errors", "lost", "duplicates", "stored from refused input", "result", "notes")


def run_suite(long: bool) -> tuple[list[dict], int, float]:
    with tempfile.TemporaryDirectory(prefix="khaibao-reliability-") as tmp:
        figures = Path(tmp) / "figures.jsonl"
        env = {**os.environ, "KHAIBAO_RELIABILITY_FIGURES": str(figures),
               "KHAIBAO_RELIABILITY_LONG": "1" if long else "0"}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITE],
                                cwd=REPO, env=env, stdout=sys.stderr, stderr=sys.stderr, check=False)
        elapsed = time.monotonic() - started
        rows = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []
    return rows, result.returncode, elapsed


def suite_rows(figures: list[dict], passed: bool) -> list[dict]:
    by_part = collections.defaultdict(list)
    for row in figures:
        by_part[row["part"]].append(row)
    verdict = "pass" if passed else "FAIL (see the pytest output)"
    rows = []
    matrix = by_part.get("authorization matrix", [])
    if matrix:
        m = matrix[-1]
        rows.append({"part": "Authorization matrix (endpoint x role x own/other jurisdiction, no/forged token, CSRF)",
                     "tried": f"{m['cells']} cells", "server errors": m["server_errors"], "stored from refused input": 0,
                     "result": "pass" if m["failures"] == 0 else "FAIL",
                     "notes": f"{m['csrf_cells']} CSRF cells; {m['other_refused']} objects of another jurisdiction "
                              f"refused; {m['own_objects_seen']} seen in their own"})
    fuzz = by_part.get("schemathesis", [])
    if fuzz:
        latest = {row["service"]: row for row in fuzz}
        cases = sum(r["cases"] for r in latest.values())
        rows.append({"part": "Schemathesis (positive and negative cases from each service's OpenAPI)",
                     "tried": f"{cases} cases", "server errors": sum(r["server_errors"] for r in latest.values()),
                     "result": "pass" if all(r["schema_violations"] == 0 and r["server_errors"] == 0
                                             for r in latest.values()) else "FAIL",
                     "notes": ", ".join(f"{s} {r['cases']} ({r['schema_violations']} outside schema)"
                                        for s, r in latest.items())})
    # One total per file of the catalogue (tests/reliability/bad_input.py): the last of each, added up.
    bad = {r.get("file"): r["tried"] for r in by_part.get("bad input", []) if r.get("kind") == "total"}
    if bad:
        parts = {r["kind"]: r["tried"] for r in by_part["bad input"] if r.get("kind") not in ("total", None)}
        rows.append({"part": "Bad-input catalogue (each a clear 4xx, nothing stored)", "tried": f"{sum(bad.values())} inputs",
                     "server errors": 0, "stored from refused input": 0, "result": verdict,
                     "notes": ", ".join(f"{k} {v}" for k, v in parts.items())})
    hardening = by_part.get("web hardening", [])
    pages = next((r["html_pages"] for r in reversed(hardening) if "html_pages" in r), None)
    if pages is not None:
        rows.append({"part": "Web hardening (headers on every HTML page, cookies, CSRF)", "tried": f"{pages} pages",
                     "server errors": 0, "result": verdict,
                     "notes": "CSP without unsafe-inline, frame-ancestors 'none', HSTS in production, "
                              "HttpOnly/SameSite/Secure cookie, CSRF on every console form"})
    return rows


def fault_rows(long: bool) -> list[dict]:
    try:
        from bench.reliability_faults import run_faults
    except ImportError:
        return [{"part": "Faults under load", "result": "not run", "notes": "bench/reliability_faults.py missing"}]
    try:
        found = run_faults(long)
    except Exception as exc:  # noqa: BLE001 - one part failing must not hide the others' figures
        return [{"part": "Faults under load", "result": "FAIL", "notes": f"{type(exc).__name__}: {exc}"[:200]}]
    return [{"part": f"Fault: {r.get('fault')} ({r.get('duration', '')})", "tried": f"{r.get('accepted')} accepted",
             "server errors": r.get("server_errors", ""), "lost": r.get("lost"), "duplicates": r.get("duplicates"),
             "result": "pass" if r.get("lost") == 0 and r.get("duplicates") == 0 else "FAIL",
             "notes": f"stored {r.get('stored')}; {r.get('notes', '')}"} for r in found]


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        values = {"lost": 0, "duplicates": 0, "stored from refused input": "", **row}
        lines.append("| " + " | ".join(str(values.get(c, "")) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", action="store_true", help="the long form (1,000+ cases per service, full faults)")
    parser.add_argument("--skip-faults", action="store_true", help="only the suite (authorization, fuzzing, inputs)")
    args = parser.parse_args(argv)
    figures, code, elapsed = run_suite(args.long)
    rows = suite_rows(figures, code == 0)
    if not args.skip_faults:
        rows += fault_rows(args.long)
    print(f"\nReliability figures ({'long' if args.long else 'short'} form; suite {elapsed:.0f} s on "
          f"{os.cpu_count()} cores shared with other work, timings are noisy)\n")
    print(markdown(rows))
    ok = code == 0 and all(r.get("result") in ("pass", "not run") for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
