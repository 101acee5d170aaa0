"""A throwaway PostgreSQL cluster run from the Debian binaries, without Docker.

Used by CI (``.ci/run``) for the shared test database and by tests that need a private
server they can stop, kill and restart. ``initdb`` and ``pg_ctl`` come from
``/usr/lib/postgresql/<version>/bin`` (the newest installed, or ``$KHAIBAO_PG_BIN``);
when running as root they run as the ``postgres`` OS user through ``runuser``.

Command line (the server is detached and survives the command; state lives in DATA):

    python -m tests.infra.postgres_local start   --data DATA [--port N]
    python -m tests.infra.postgres_local stop    --data DATA
    python -m tests.infra.postgres_local kill    --data DATA
    python -m tests.infra.postgres_local restart --data DATA
    python -m tests.infra.postgres_local status  --data DATA

``start`` prints the superuser URL ``postgresql://khaibao:khaibao@127.0.0.1:PORT/postgres``
on stdout and nothing else. Password authentication (scram-sha-256) on 127.0.0.1 only.

In Python::

    pg = LocalPostgres(data_dir)
    pg.start(); pg.url; pg.kill(); pg.restart(); pg.stop()

Standard library only, and no imports from the project.
"""
from __future__ import annotations

import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import process
from .process import free_port, pid_alive, pid_exists

__all__ = ["LocalPostgres", "PostgresStartError", "find_pg_bin", "free_port", "main"]

USER = "khaibao"
PASSWORD = "khaibao"
STATE_FILE = "postgres-local.json"
LOG_FILE = "postgres.log"
PGDATA_DIR = "pgdata"
OS_USER = "postgres"

CONF = """\
# Added by tests/infra/postgres_local.py: a throwaway server for tests.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 300
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
log_connections = off
log_disconnections = off
"""

HBA = """\
# Written by tests/infra/postgres_local.py
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
"""


class PostgresStartError(RuntimeError):
    """The server did not come up; the message ends with the tail of its log."""


def find_pg_bin() -> Path | None:
    """The directory with initdb and pg_ctl: $KHAIBAO_PG_BIN, the newest Debian one, or $PATH."""
    env = os.environ.get("KHAIBAO_PG_BIN")
    if env:
        return Path(env) if (Path(env) / "pg_ctl").exists() else None
    versions = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        try:
            versions.append((int(d.parent.name), d))
        except ValueError:
            continue
    for _, d in sorted(versions, reverse=True):
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and (Path(found).parent / "initdb").exists() else None


class LocalPostgres:
    """A PostgreSQL cluster in ``data_dir/pgdata`` listening on 127.0.0.1."""

    def __init__(self, data_dir: Path | str, port: int | None = None, bin_dir: Path | str | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        state = self._read_state()
        self.port = port or state.get("port")
        found = Path(bin_dir) if bin_dir else find_pg_bin()
        self.bin_dir = found
        self._as_postgres = os.geteuid() == 0
        self.startup_seconds: float | None = None

    # -- paths and addresses -------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.data_dir / PGDATA_DIR

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        if not self.port:
            raise RuntimeError("the server has no port yet; call start() first")
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, from postmaster.pid."""
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid
        return pid is not None and pid_alive(pid)

    # -- state ---------------------------------------------------------------------------
    def _read_state(self) -> dict:
        return process.read_state(self.data_dir, STATE_FILE)

    def _write_state(self) -> None:
        process.write_state(self.data_dir, STATE_FILE, {"port": self.port, "url": self.url})

    # -- commands ------------------------------------------------------------------------
    def _tool(self, name: str) -> str:
        if self.bin_dir is None:
            raise PostgresStartError(
                "no PostgreSQL server binaries found (apt-get install postgresql, or set KHAIBAO_PG_BIN)")
        return str(self.bin_dir / name)

    def _run(self, args: list[str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = ["runuser", "-u", OS_USER, "--", *args] if self._as_postgres else args
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, cwd="/", start_new_session=True)
        if check and proc.returncode != 0:
            raise PostgresStartError(f"{shlex.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout}\n{self.log_tail()}")
        return proc

    def _prepare_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self._as_postgres:
            return
        pw = pwd.getpwnam(OS_USER)
        # The postgres user must own its files and be able to reach the data dir.
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            try:
                os.chown(path, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
            except FileNotFoundError:
                pass
        probe = subprocess.run(["runuser", "-u", OS_USER, "--", "test", "-w", str(self.data_dir)],
                               stdin=subprocess.DEVNULL, capture_output=True)
        if probe.returncode != 0:
            raise PostgresStartError(
                f"the {OS_USER} OS user cannot reach {self.data_dir}: a parent directory is not "
                "traversable (chmod o+x it, or use a data dir under a world-traversable directory)")

    def is_initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def _initdb(self) -> None:
        pwfile = self.data_dir / ".pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_postgres:
            pw = pwd.getpwnam(OS_USER)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        pwfile.chmod(0o600)
        try:
            self._run([self._tool("initdb"), "-D", str(self.pgdata), "-U", USER, f"--pwfile={pwfile}",
                       "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                       "--locale=C.UTF-8", "--no-instructions"])
        finally:
            pwfile.unlink(missing_ok=True)
        (self.pgdata / "pg_hba.conf").write_text(HBA)

    def _write_conf(self) -> None:
        socket_dir = str(self.data_dir)
        if len(socket_dir) > 80:  # a Unix socket path is limited to 107 bytes
            socket_dir = ""
        conf = self.pgdata / "postgresql.conf"
        text = conf.read_text()
        marker = "# Added by tests/infra/postgres_local.py"
        if marker in text:
            text = text[:text.index(marker)]
        conf.write_text(text + CONF.format(port=self.port, socket_dir=socket_dir))
        if self._as_postgres:
            pw = pwd.getpwnam(OS_USER)
            for path in (conf, self.pgdata / "pg_hba.conf"):
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self, timeout: float = 60) -> "LocalPostgres":
        """Initialise the cluster on first start, then start it and wait until it accepts connections."""
        if self.is_running():
            raise PostgresStartError(f"a server already runs from {self.pgdata} (pid {self.pid})")
        self.port = self.port or free_port()
        self._prepare_dir()
        if not self.is_initialised():
            self._initdb()
        elif self.pid is not None and pid_exists(self.pid) and not pid_alive(self.pid):
            # A killed postmaster nobody reaped (no init process to do it): its lock file
            # would block the start.
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        self._write_conf()
        self._write_state()
        started = time.monotonic()
        self._run([self._tool("pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(self.log_file),
                   "-w", "-t", str(int(timeout)), "-s"], timeout=timeout + 30)
        _ATTACHED.add(self)
        self._wait_tcp(deadline=started + timeout)
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_tcp(self, deadline: float) -> None:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise PostgresStartError(f"PostgreSQL does not accept connections on port {self.port}\n{self.log_tail()}")
                time.sleep(0.2)

    def stop(self, timeout: float = 30) -> None:
        """A fast shutdown (pg_ctl stop -m fast); SIGKILL if it takes longer than ``timeout``."""
        _ATTACHED.discard(self)
        if not self.is_running():
            return
        proc = self._run([self._tool("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w",
                          "-t", str(int(timeout)), "-s"], check=False, timeout=timeout + 30)
        if proc.returncode != 0 and self.is_running():
            self.kill()

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as in a crash; the next start recovers."""
        _ATTACHED.discard(self)
        pid = self.pid
        if pid is None or not pid_alive(pid):
            return
        victims = [pid, *process.children(pid)]
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Wait until they are reaped, not just dead: PostgreSQL refuses to start while the
        # pid in postmaster.pid exists, and a zombie does.
        process.wait_gone(victims, 10)

    def restart(self, timeout: float = 60) -> "LocalPostgres":
        """Stop if running, then start again with the same data and port."""
        self.stop()
        return self.start(timeout)

    def detach(self) -> None:
        """Leave the server running when this Python process exits (for the command line)."""
        _ATTACHED.discard(self)

    def log_tail(self, lines: int = 30) -> str:
        return process.log_tail(self.log_file, lines)

    def __enter__(self) -> "LocalPostgres":
        return self.start() if not self.is_running() else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalPostgres(port={self.port!r}, data_dir={str(self.data_dir)!r})"


# Servers started by this process (and not detached) are killed when it exits.
_ATTACHED = process.Attached()


def main(argv: list[str] | None = None) -> int:
    args = process.parser(
        "python -m tests.infra.postgres_local", __doc__.split("\n\n")[0], noun="server", prints="superuser URL",
        default_timeout=60, start_options=lambda p: None, data_help="directory for the cluster, log and state",
        port_help="TCP port (default: a free one)").parse_args(argv)

    pg = LocalPostgres(args.data, port=getattr(args, "port", None))
    if args.command in ("start", "restart"):
        return process.start_command(
            pg, args.command == "restart", args.timeout, PostgresStartError,
            started=lambda: f"PostgreSQL started in {pg.startup_seconds:.1f} s (pid {pg.pid}, {pg.bin_dir}, "
                            f"log {pg.log_file})",
            address=lambda: pg.url)
    if args.command == "status":
        return process.status_command(pg.is_running(), pg.url if pg.port else "")
    return process.stop_command(pg, args.command, name="PostgreSQL", absent=f"no server runs from {pg.pgdata}")


if __name__ == "__main__":
    sys.exit(main())
