#!/usr/bin/env python3
"""Bootstrap a virtual environment and run khaibao or its tests.

    python3 dev.py up      # the whole system on SQLite + the embedded bus, with demo data
    python3 dev.py test    # the test suite (extra arguments go to pytest)

Only Python 3.11 is needed: the first run creates .venv and installs the project into it.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".khaibao-installed"


def _requirements_digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"khaibao needs Python 3.11 (this is {sys.version.split()[0]})")
    if not (BIN / "python").exists():
        print("Creating the virtual environment in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = _requirements_digest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    print("Installing khaibao and its dependencies into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    for attempt in range(3):
        done = subprocess.call([*pip, "install", "-e", f"{ROOT}[test]"]) == 0
        if done:
            break
        print(f"pip install failed (attempt {attempt + 1} of 3), retrying ...", flush=True)
    else:
        sys.exit("Could not install the dependencies; see the pip output above.")
    STAMP.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "test"}:
        print(__doc__)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    # This process BECOMES the command (exec): Ctrl-C reaches `khaibao up` itself, which
    # stops its services cleanly. A wrapper waiting in subprocess.call would kill it
    # (SIGKILL) on KeyboardInterrupt and leave the services running without a parent.
    os.chdir(ROOT)
    if command == "up":
        program = [str(BIN / "khaibao"), "up", *rest]
    else:
        program = [str(BIN / "python"), "-m", "pytest", *rest]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(program[0], program)  # does not return


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
