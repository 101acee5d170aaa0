"""The processes of the production rehearsal (tests/deploy/rehearsal.py): programs started
with their logs in files, ``khaibao`` commands run as the image runs them, and the SMTP
relay that stands for the city's."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from tests.infra.process import free_port

from .support import ROOT


# --- the mail relay ---------------------------------------------------------------------------

class MailRelay:
    """aiosmtpd standing for the city's SMTP relay; keeps every message."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self._controller = None

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802, ANN201 - aiosmtpd's hook
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content,
                                                policy=default_policy))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


# --- processes ----------------------------------------------------------------------------------

@dataclass
class Program:
    """One process of the rehearsal, its log in a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if not self.running():
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run_khaibao(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``khaibao <args>`` as the image runs it (the checkout's code, this interpreter)."""
    return subprocess.run([sys.executable, "-m", "libs.common.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def base_environment() -> dict[str, str]:
    """What a container starts with: nothing of ours from the test's own environment."""
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = str(ROOT)  # the checkout is the image's installed package
    env["PYTHONUNBUFFERED"] = "1"
    return env
