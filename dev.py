#!/usr/bin/env python3
"""Bootstrap a virtual environment and run khaibao or its tests.

    python3 dev.py up      # the whole system on SQLite + the embedded bus, with demo data, a past
                           # week of the demo district and the demo mailbox (README "The local demo")
    python3 dev.py test    # the test suite (extra arguments go to pytest)
    python3 dev.py lock    # regenerate requirements/*.txt from pyproject.toml (after editing it)

Only Python 3.11 is needed: the first run creates .venv and installs the locked
dependencies (requirements/test.txt, hash-checked) and the project (editable) into it.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".khaibao-installed"
LOCK = ROOT / "requirements" / "test.txt"  # runtime + test extra; main.txt (runtime) is the image's
LOCK_TOOL = "uv==0.13.10"  # the locker: pinned, so that a relock changes only what PyPI changed
LOCK_TOOLS_VENV = VENV / "lock-tools"


def _requirements_digest() -> str:
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", LOCK):
        digest.update(path.read_bytes())
    return digest.hexdigest()


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
        # Exactly the locked versions, each checked against its hash (setuptools included,
        # so the project builds without fetching an unpinned backend); then the checkout
        # itself, editable, without resolving anything again.
        done = (subprocess.call([*pip, "install", "--require-hashes", "-r", str(LOCK)]) == 0
                and subprocess.call([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT)]) == 0)
        if done:
            break
        print(f"pip install failed (attempt {attempt + 1} of 3), retrying ...", flush=True)
    else:
        sys.exit("Could not install the dependencies; see the pip output above.")
    STAMP.write_text(digest)


def lock_inputs_digest() -> str:
    """The sha256 of what the lock files are made from (pyproject's requirements, the test
    extra, the build backend, the Python range); written into them, so that a lock left
    behind by an edited pyproject.toml is noticed without the network."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    inputs = {"requires-python": project["project"]["requires-python"],
              "dependencies": project["project"]["dependencies"],
              "optional-dependencies": project["project"].get("optional-dependencies", {}),
              "build-system": project["build-system"]["requires"]}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


INPUTS_LINE = "# inputs sha256: "


def lock() -> int:
    """Regenerate requirements/{test,main}.txt with the pinned uv, for Python 3.11 on every
    platform (--universal), with the sha256 of every wheel and sdist."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"khaibao needs Python 3.11 (this is {sys.version.split()[0]})")
    tools_bin = LOCK_TOOLS_VENV / ("Scripts" if os.name == "nt" else "bin")
    uv = tools_bin / "uv"
    if not uv.exists() or LOCK_TOOL.split("==")[1] not in subprocess.run(
            [str(uv), "--version"], capture_output=True, text=True).stdout:
        venv.EnvBuilder(with_pip=True, clear=True).create(LOCK_TOOLS_VENV)
        subprocess.check_call([str(tools_bin / "python"), "-m", "pip", "--disable-pip-version-check", "-q",
                               "install", LOCK_TOOL])
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    compile_ = [str(uv), "pip", "compile", "--quiet", "--universal", "--python-version", "3.11",
                "--generate-hashes", "--custom-compile-command", "python3 dev.py lock", "pyproject.toml", "-"]
    # The build backend (pyproject's build-system) is locked too: the installers build the
    # project with --no-build-isolation from these pins. main.txt is constrained to
    # test.txt's versions, so the image runs exactly what the tests ran.
    stdin = "\n".join(build) + "\n"
    os.chdir(ROOT)
    for args in (["--extra", "test", "-o", "requirements/test.txt"],
                 ["-c", "requirements/test.txt", "-o", "requirements/main.txt"]):
        if subprocess.run([*compile_, *args], input=stdin, text=True).returncode != 0:
            return 1
        out = ROOT / args[-1]
        command_line = "\n#    python3 dev.py lock\n"
        header, _, rest = out.read_text(encoding="utf-8").partition(command_line)
        out.write_text(f"{header}{command_line}{INPUTS_LINE}{lock_inputs_digest()}\n{rest}", encoding="utf-8")
    print("requirements/test.txt and requirements/main.txt regenerated; commit them with pyproject.toml")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["lock"] and len(argv) == 1:
        return lock()
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
