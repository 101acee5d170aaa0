"""The lock files: requirements/test.txt (runtime + test extra, what dev.py installs) and
requirements/main.txt (runtime, what the image installs), made by ``python3 dev.py lock``.

Every requirement of pyproject.toml is pinned there with its hashes and within its
specifier, the two files agree, they were made from the current pyproject.toml, and every
installer uses them. No network: the regeneration check runs only when uv is installed
and its cache answers offline."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .support import DEPLOY, ROOT

TEST_LOCK = ROOT / "requirements" / "test.txt"
MAIN_LOCK = ROOT / "requirements" / "main.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@dataclass
class Pin:
    name: str
    version: str
    marker: str
    hashes: set[str] = field(default_factory=set)


def _parse(path: Path) -> dict[str, Pin]:
    """name -> pin; each entry is ``name==version [; marker] \\`` and its ``--hash`` lines."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace():
            spec = stripped.rstrip("\\").strip()
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.+))?", spec)
            assert match, f"{path.name}: not an exact pin: {stripped!r}"
            name = canonicalize_name(match[1])
            assert name not in pins, f"{path.name}: {name} pinned twice"
            current = pins[name] = Pin(name, match[2], match[3] or "")
        else:
            assert current is not None, f"{path.name}: an option outside any requirement: {stripped!r}"
            for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", stripped):
                current.hashes.add(digest)
    return pins


def _requirements(*groups: list[str]) -> list[Requirement]:
    return [Requirement(text) for group in groups for text in group]


RUNTIME = _requirements(PYPROJECT["project"]["dependencies"], PYPROJECT["build-system"]["requires"])
TEST_EXTRA = _requirements(PYPROJECT["project"]["optional-dependencies"]["test"])


@pytest.fixture(scope="module")
def test_lock() -> dict[str, Pin]:
    return _parse(TEST_LOCK)


@pytest.fixture(scope="module")
def main_lock() -> dict[str, Pin]:
    return _parse(MAIN_LOCK)


def _dev_module():
    spec = importlib.util.spec_from_file_location("khaibao_dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lock_name, requirements", [
    ("main", RUNTIME),
    ("test", RUNTIME + TEST_EXTRA),
])
def test_every_pyproject_requirement_is_pinned_within_its_specifier(lock_name, requirements, request):
    pins = request.getfixturevalue(f"{lock_name}_lock")
    for requirement in requirements:
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not in requirements/{lock_name}.txt: python3 dev.py lock"
        assert pin.hashes, f"{pin.name} has no --hash=sha256 in requirements/{lock_name}.txt"
        assert requirement.specifier.contains(Version(pin.version), prereleases=True), \
            f"{pin.name}=={pin.version} in requirements/{lock_name}.txt is outside {requirement}"


@pytest.mark.parametrize("path", [MAIN_LOCK, TEST_LOCK], ids=lambda p: p.name)
def test_every_locked_package_has_hashes(path):
    pins = _parse(path)
    assert pins
    assert not [p.name for p in pins.values() if not p.hashes]


def test_the_image_runs_what_the_tests_ran(main_lock, test_lock):
    for name, pin in main_lock.items():
        assert name in test_lock, f"{name} is in main.txt but not in test.txt"
        assert (pin.version, pin.hashes) == (test_lock[name].version, test_lock[name].hashes), name


def test_the_locks_were_made_from_this_pyproject():
    dev = _dev_module()
    expected = dev.INPUTS_LINE + dev.lock_inputs_digest()
    for path in (MAIN_LOCK, TEST_LOCK):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert expected in lines[:5], f"{path.name} is older than pyproject.toml's requirements: python3 dev.py lock"


def _uv() -> str | None:
    tools = ROOT / ".venv" / "lock-tools" / "bin" / "uv"
    return str(tools) if tools.exists() else shutil.which("uv")


def test_relocking_offline_changes_nothing(tmp_path, test_lock):
    """What ``python3 dev.py lock`` would write, from uv's cache only (no network): the
    current lock is kept as the preferred versions, so a current lock comes back the same."""
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (python3 dev.py lock installs it); the digest test covers staleness")
    out = tmp_path / "test.txt"
    shutil.copyfile(TEST_LOCK, out)
    build = "\n".join(PYPROJECT["build-system"]["requires"]) + "\n"
    done = subprocess.run(
        [uv, "pip", "compile", "--offline", "--quiet", "--universal", "--python-version", "3.11",
         "--generate-hashes", "pyproject.toml", "-", "--extra", "test", "-o", str(out)],
        cwd=ROOT, input=build, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.skip(f"uv cannot resolve offline here: {done.stderr.strip()[-300:]}")
    again = _parse(out)
    assert {n: (p.version, p.hashes, p.marker) for n, p in again.items()} == \
        {n: (p.version, p.hashes, p.marker) for n, p in test_lock.items()}


def test_installers_use_the_locks():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY requirements/main\.txt ", dockerfile, flags=re.MULTILINE)
    assert re.search(r"pip install --require-hashes -r requirements/main\.txt$", dockerfile, flags=re.MULTILINE)
    assert re.search(r"pip install --no-deps --no-build-isolation \.$", dockerfile, flags=re.MULTILINE)
    assert not re.search(r"pip install (?!--require-hashes|--no-deps)", dockerfile)

    dev = _dev_module()
    assert dev.LOCK == TEST_LOCK
    source = (ROOT / "dev.py").read_text(encoding="utf-8")
    assert '"install", "--require-hashes", "-r", str(LOCK)' in source
    assert '"install", "--no-deps", "--no-build-isolation", "-e", str(ROOT)' in source

    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 dev.py test" in ci
    assert not re.search(r"\bpip3?\b.*\binstall\b|\buv\b", ci), ".ci/run installs Python packages only through dev.py"


def test_a_changed_lock_or_pyproject_reinstalls(tmp_path, monkeypatch):
    dev = _dev_module()
    (tmp_path / "requirements").mkdir()
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    lock = tmp_path / "requirements" / "test.txt"
    lock.write_bytes(TEST_LOCK.read_bytes())
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "LOCK", lock)
    stamped = dev._requirements_digest()
    lock.write_text(lock.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    relocked = dev._requirements_digest()
    (tmp_path / "pyproject.toml").write_text("# edited\n", encoding="utf-8")
    assert len({stamped, relocked, dev._requirements_digest()}) == 3
