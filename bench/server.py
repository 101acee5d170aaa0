"""A real service under test: ``khaibao serve <service>`` started, waited for and stopped.

Every bench that measures a running service starts it the same way: a process group of its
own (stopped as a whole, workers included), the environment of this process without its
``KHAIBAO_*`` variables plus development mode, quiet logs and the given settings, output
appended to a log file whose tail is in the error when the server exits or never becomes
ready. The per-address rate limits are off by default: a bench's load comes from one
machine, and the limits have benches of their own (bench/flood.py turns them back on).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.infra.process import stop_group

REPO = Path(__file__).resolve().parents[1]


def start_service(service: str, port: int, *, data_dir: Path, log: Path, settings: dict[str, str],
                  workers: int | None = None, ready_timeout: float = 120, ready_answers: int = 1,
                  settle: float = 0.0) -> subprocess.Popen:
    """The service on 127.0.0.1:``port`` once ``/readyz`` answered 200 ``ready_answers`` times
    (several answers: every worker of several is up), then ``settle`` seconds more."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHAIBAO_")}
    env.update({"KHAIBAO_ENVIRONMENT": "development", "KHAIBAO_DATA_DIR": str(data_dir),
                "KHAIBAO_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", "KHAIBAO_RATE_LIMIT_ENABLED": "false",
                **settings})
    command = [sys.executable, "-m", "libs.common.cli", "serve", service, "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + ready_timeout
    ready = 0
    while ready < ready_answers and time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{service} exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                ready += 1
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    if ready < ready_answers:
        stop_server(process)
        raise RuntimeError(f"{service} did not become ready within {ready_timeout:.0f} s: {log.read_text()[-3000:]}")
    time.sleep(settle)
    return process


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after 30 s."""
    stop_group(process, timeout=30)
