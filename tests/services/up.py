"""``khaibao up`` as a subprocess on free ports, for the tests that run the whole local
system (test_up, browser tests): start it, wait until every service answers, stop it and
check that no process is left. Importable from ``tests.services.conftest`` as well.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from libs.common.settings import SERVICES
from tests.infra.process import free_port_block

REPO_ROOT = Path(__file__).resolve().parents[2]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def children_of(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc; no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces and parentheses
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def checkout_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this checkout first on PYTHONPATH: the ``khaibao`` script of a virtualenv
    installed (editable) from another checkout of the repository would run that one's code."""
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def khaibao_command() -> list[str]:
    script = Path(sys.executable).with_name("khaibao")
    return [str(script)] if script.exists() else [sys.executable, "-m", "libs.common.cli"]


@dataclass
class UpProcess:
    """A running ``khaibao up``: the launcher, its service processes and their URLs."""

    process: subprocess.Popen
    base_port: int
    data_dir: Path
    log_path: Path
    host: str = "127.0.0.1"

    @property
    def landing_url(self) -> str:
        return f"http://{self.host}:{self.base_port}"

    @property
    def urls(self) -> dict[str, str]:
        return {s: f"http://{self.host}:{self.base_port + i + 1}" for i, s in enumerate(SERVICES)}

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(len(SERVICES) + 1)]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait for /healthz of the five services and the landing page; the seconds it took."""
        started = time.monotonic()
        pending = {**self.urls, "landing": self.landing_url}
        while pending:
            if self.process.poll() is not None:
                raise AssertionError(f"khaibao up exited with {self.process.returncode}:\n{self.log()}")
            for name, url in list(pending.items()):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() - started > timeout:
                raise AssertionError(f"not healthy within {timeout:.0f}s: {sorted(pending)}\n{self.log()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> tuple[bool, list[int]]:
        """Send ``sig`` to the launcher; whether everything exited in time, and the stragglers."""
        children = children_of(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None and not any(alive(pid) for pid in children):
                return True, []
            time.sleep(0.1)
        return False, [pid for pid in [self.process.pid, *children] if alive(pid)]

    def assert_stops_on_ctrl_c(self, children: list[int], timeout: float) -> None:
        """SIGINT to the launcher: it and ``children`` exit within ``timeout``, no port listens."""
        stopped, stragglers = self.stop(signal.SIGINT, timeout=timeout)
        assert stopped, f"still running after {timeout:.0f} s: {stragglers}\n{self.log()}"
        assert not [pid for pid in children if alive(pid)]
        listening = [port for port in self.ports if port_open(port)]
        assert listening == [], f"ports still listening: {listening}"

    def kill(self) -> None:
        """Last resort after a failed test: end the launcher and the processes it started."""
        for pid in children_of(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def launch_up(data_dir: Path, log_path: Path, *extra: str, command: list[str] | None = None,
              demo_week: bool = False) -> UpProcess:
    """Start ``khaibao up`` (or ``command``, e.g. the README's ``dev.py up``) from the checkout
    with a temp data dir on free ports; without the demo week (``--no-demo-week``: a dozen
    seconds, and figures the tests do not expect) unless ``demo_week``."""
    base = free_port_block(len(SERVICES) + 1)
    if not demo_week:
        extra = ("--no-demo-week", *extra)
    env = checkout_env({k: v for k, v in os.environ.items() if not k.startswith("KHAIBAO_")})
    env["PYTHONUNBUFFERED"] = "1"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*(command or [*khaibao_command(), "up"]), "--data-dir", str(data_dir), "--base-port", str(base), *extra],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return UpProcess(process, base, data_dir, log_path)


@contextlib.contextmanager
def khaibao_up(data_dir: Path, log_path: Path, *extra: str, timeout: float = 60.0,
               demo_week: bool = False) -> Iterator[UpProcess]:
    up = launch_up(data_dir, log_path, *extra, demo_week=demo_week)
    try:
        try:
            up.wait_ready(timeout)
        except AssertionError:
            if "address already in use" not in up.log():
                raise
            # Another process took one of the ports between the check and the bind: once
            # more on another block (nothing else is retried).
            up.stop()
            up = launch_up(data_dir, log_path, *extra, demo_week=demo_week)
            up.wait_ready(timeout)
        yield up
    finally:
        ok, _ = up.stop()
        if not ok:
            up.kill()


def demo_token(up: UpProcess, username: str) -> str:
    from libs.common.demo import DEMO_PASSWORD

    response = httpx.post(f"{up.urls['provisioning']}/api/token",
                          json={"username": username, "password": DEMO_PASSWORD}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
