"""What the throwaway engines of the tests (``postgres_local``, ``kafka_local``) share.

Free ports, process checks through ``/proc``, the JSON state file in the data directory,
the tail of a log, the servers to kill when the Python process exits, and the command
line (``start|restart|stop|kill|status --data DATA``).

Standard library only, and no imports from the project, so that CI can run the engines
before the virtual environment exists.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the source ports of outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port_block(count: int = 1, host: str = "127.0.0.1", attempts: int = 400) -> int:
    """The first of ``count`` consecutive TCP ports nobody listens on (bound and released).

    Chosen below the kernel's ephemeral range: a port from that range can be taken, between
    this check and the server's bind, as the source port of any outgoing connection (a
    service's health probe, a Kafka client), and the server then fails with EADDRINUSE.
    """
    low, high = _ephemeral_range()
    ranges = [(10000, low - count)] if low - count > 10000 else [(high + 1, 65535 - count)]
    for _ in range(attempts):
        start, end = random.choice(ranges)
        base = random.randint(start, end)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, outside the ephemeral range (see above)."""
    return free_port_block(1, host)


# --- processes ---------------------------------------------------------------------------

def pid_alive(pid: int) -> bool:
    """The process runs (a zombie is as good as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def pid_exists(pid: int) -> bool:
    """The pid is taken, even by a zombie nobody reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def stop_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started
    (uvicorn's workers): SIGTERM to its process group, SIGKILL after ``timeout`` seconds."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_gone(pids: list[int], timeout: float = 10) -> None:
    """Until the processes are reaped, not just dead (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while any(pid_exists(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


# --- files in the data directory ----------------------------------------------------------

def read_state(data_dir: Path, name: str) -> dict:
    try:
        return json.loads((data_dir / name).read_text())
    except (OSError, ValueError):
        return {}


def write_state(data_dir: Path, name: str, state: dict) -> None:
    (data_dir / name).write_text(json.dumps(state, indent=2) + "\n")


def log_tail(log_file: Path, lines: int) -> str:
    try:
        text = log_file.read_bytes().decode(errors="replace")
    except OSError:
        return f"(no log at {log_file})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {log_file}:\n{tail}"


# --- servers started by this process --------------------------------------------------------

class Killable(Protocol):
    def kill(self) -> None: ...


class Attached:
    """Servers started by this process and not detached: killed when it exits, so that a
    crashed test run does not leave servers behind."""

    def __init__(self) -> None:
        self.servers: set = set()
        atexit.register(self.kill_all)

    def add(self, server: Killable) -> None:
        self.servers.add(server)

    def discard(self, server: Killable) -> None:
        self.servers.discard(server)

    def kill_all(self) -> None:
        for server in list(self.servers):
            try:
                server.kill()
            except Exception:  # noqa: BLE001 - best effort at interpreter exit
                pass


# --- the command line -----------------------------------------------------------------------

class Server(Protocol):
    startup_seconds: float | None

    def is_running(self) -> bool: ...
    def start(self, timeout: float) -> object: ...
    def restart(self, timeout: float) -> object: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...
    def detach(self) -> None: ...


def parser(prog: str, description: str, *, noun: str, prints: str, default_timeout: float,
           start_options: Callable[[argparse.ArgumentParser], None], data_help: str,
           port_help: str) -> argparse.ArgumentParser:
    """``start|restart`` (with the engine's own options) and ``stop|kill|status``, all with ``--data``."""
    top = argparse.ArgumentParser(prog=prog, description=description)
    sub = top.add_subparsers(dest="command", required=True)
    for name in ("start", "restart"):
        p = sub.add_parser(name, help=f"{name} a detached {noun} and print its {prints}")
        start_options(p)
        p.add_argument("--data", type=Path, required=True, help=data_help)
        p.add_argument("--port", type=int, help=port_help)
        p.add_argument("--timeout", type=float, default=default_timeout)
    for name in ("stop", "kill", "status"):
        p = sub.add_parser(name)
        p.add_argument("--data", type=Path, required=True)
    return top


def start_command(server: Server, restart: bool, timeout: float, errors: type[Exception],
                  started: Callable[[], str], address: Callable[[], str]) -> int:
    """Start (or restart) detached; the address alone on stdout, the rest on stderr."""
    try:
        server.restart(timeout) if restart else server.start(timeout)
    except errors as exc:
        print(exc, file=sys.stderr)
        return 1
    server.detach()
    print(started(), file=sys.stderr)
    print(address(), flush=True)
    return 0


def status_command(running: bool, address: str) -> int:
    print(f"{'running' if running else 'stopped'} {address}".strip())
    return 0 if running else 3


def stop_command(server: Server, command: str, *, name: str, absent: str,
                 on_absent: Callable[[], None] | None = None) -> int:
    """``stop`` or ``kill``; nothing to do (exit 0) when nothing runs."""
    if not server.is_running():
        print(absent, file=sys.stderr)
        if on_absent is not None:
            on_absent()
        return 0
    server.kill() if command == "kill" else server.stop()
    print(f"{name} killed" if command == "kill" else f"{name} stopped", file=sys.stderr)
    return 0
