"""``khaibao --version``: the installed distribution's version, pyproject's from a bare checkout."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from libs.common import cli

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _version_output(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    return capsys.readouterr().out.strip()


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    assert _version_output(capsys) == f"khaibao {metadata.version('khaibao')}"


def test_version_falls_back_to_pyproject_without_metadata(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert _version_output(capsys) == f"khaibao {PYPROJECT_VERSION}"


def test_the_command_prints_it() -> None:
    done = subprocess.run([sys.executable, "-m", "libs.common.cli", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"khaibao {metadata.version('khaibao')}"
