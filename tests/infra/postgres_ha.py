"""A PostgreSQL primary and standby with automatic failover (pg_auto_failover), without Docker.

One directory holds a pg_auto_failover monitor and two data nodes, ``a`` and ``b``, each a
``pg_autoctl run`` keeper (Debian: ``postgresql-15-auto-failover``, ``pg-auto-failover-cli``)
on free loopback ports; when running as root they run as the ``postgres`` OS user through
``runuser``, like tests/infra/postgres_local.py. Replication is synchronous: the monitor
sets ``synchronous_standby_names = 'ANY 1 (...)'`` on the primary (replication quorum on,
``number_sync_standbys = 0``), so a commit returns only once the standby has it. When the
standby is gone, the monitor moves the primary to ``wait_primary`` and commits stop waiting
(pg_auto_failover prefers availability with one node; the alert "standby gone" says so).

The failure detection is tightened for a test that must finish in minutes (monitor health
checks every second, a node unhealthy after 5 s, the old primary given 8 s to demote, the
keeper's network-partition timeout 5 s; about 19 s from the kill to a writable standby);
``FAST_FAILOVER`` lists the values, and deploy/RUNBOOK.md the production ones (the
defaults: about 50-55 s).

Command line (detached; state lives in DATA):

    python -m tests.infra.postgres_ha start  --data DATA      # prints the multi-host URL
    python -m tests.infra.postgres_ha status --data DATA
    python -m tests.infra.postgres_ha stop   --data DATA
    python -m tests.infra.postgres_ha kill   --data DATA

``start`` prints ``postgresql://khaibao:khaibao@127.0.0.1:PA,127.0.0.1:PB/postgres?target_session_attrs=read-write``.

In Python::

    ha = PostgresHA(data_dir); ha.start()
    old = ha.kill_primary(); seconds = ha.wait_failover(old); ha.restart_node(old); ha.stop()

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
from .postgres_local import OS_USER, PASSWORD, USER, PostgresStartError, find_pg_bin
from .process import free_port, pid_alive

__all__ = ["PostgresHA", "PostgresHAError", "find_autoctl", "main"]

STATE_FILE = "postgres-ha.json"
NODES = ("a", "b")
MONITOR = "monitor"
# pg_auto_failover's monitor settings for a test that fails over in seconds (defaults: 5 s,
# 5 s, 2, 2 s, 20 s, 30 s); the keepers' network_partition_timeout goes from 20 s to 5 s.
FAST_FAILOVER = {
    "pgautofailover.health_check_period": "1s",
    "pgautofailover.health_check_timeout": "2s",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "1s",
    "pgautofailover.node_considered_unhealthy_timeout": "5s",
    "pgautofailover.primary_demote_timeout": "8s",
}
PARTITION_TIMEOUT = "5"
# The services' role authenticates with its password (scram-sha-256); pg_auto_failover's
# own roles (monitor, replicator) are trusted on loopback, as in a test cluster only.
HBA_FIRST = f"host    all   {USER}   127.0.0.1/32   scram-sha-256\n"
SETTINGS = """\
# Added by tests/infra/postgres_ha.py
max_connections = 300
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
log_min_messages = warning
"""


class PostgresHAError(PostgresStartError):
    """The pair did not come up or did not fail over; the message ends with the logs' tails."""


def find_autoctl() -> str | None:
    return shutil.which("pg_autoctl") or (
        "/usr/bin/pg_autoctl" if Path("/usr/bin/pg_autoctl").exists() else None)


def descendants(pid: int) -> list[int]:
    found = []
    for child in process.children(pid):
        found += [child, *descendants(child)]
    return found


class PostgresHA:
    """pg_auto_failover: a monitor and two nodes under ``data_dir``."""

    def __init__(self, data_dir: Path | str, bin_dir: Path | str | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.bin_dir = Path(bin_dir) if bin_dir else find_pg_bin()
        self.autoctl = find_autoctl()
        self._as_postgres = os.geteuid() == 0
        state = process.read_state(self.data_dir, STATE_FILE)
        self.ports: dict[str, int] = state.get("ports", {})
        self.pids: dict[str, int] = state.get("pids", {})
        self._procs: dict[str, subprocess.Popen] = {}
        self.startup_seconds: float | None = None

    # -- addresses ------------------------------------------------------------------------
    def pgdata(self, name: str) -> Path:
        return self.data_dir / name

    def log_file(self, name: str) -> Path:
        return self.data_dir / f"{name}.log"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """The libpq multi-host URL: whichever node is read-write answers."""
        hosts = ",".join(f"127.0.0.1:{self.ports[n]}" for n in NODES)
        return f"postgresql://{USER}:{PASSWORD}@{hosts}/{database}?target_session_attrs=read-write"

    def node_url(self, name: str, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.ports[name]}/{database}"

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.ports[MONITOR]}/pg_auto_failover?sslmode=disable"

    # -- running commands as postgres ---------------------------------------------------------
    def _env(self) -> list[str]:
        path = f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        return ["env", f"PATH={path}", f"PG_CONFIG={self.bin_dir / 'pg_config'}",
                f"XDG_CONFIG_HOME={self.data_dir / 'config'}", f"XDG_DATA_HOME={self.data_dir / 'share'}",
                f"XDG_RUNTIME_DIR={self.data_dir / 'run'}", "PGCONNECT_TIMEOUT=3"]

    def _cmd(self, args: list[str]) -> list[str]:
        full = [*self._env(), *args]
        return ["runuser", "-u", OS_USER, "--", *full] if self._as_postgres else full

    def _run(self, args: list[str], check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        cmd = self._cmd(args)
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, cwd="/", start_new_session=True)
        if check and proc.returncode != 0:
            raise PostgresHAError(f"{shlex.join(args)} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                                  f"{self.log_tails()}")
        return proc

    def _psql(self, port: int, sql: str, user: str = "postgres", database: str = "postgres",
              timeout: float = 10) -> str:
        proc = self._run([str(self.bin_dir / "psql"), "-X", "-q", "-At", "-h", "127.0.0.1", "-p", str(port),
                          "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql], check=False,
                         timeout=timeout)
        if proc.returncode != 0:
            raise PostgresHAError(f"psql on port {port}: {proc.stdout.strip()[-500:]}")
        return proc.stdout.strip()

    def _prepare_dir(self) -> None:
        for sub in ("", "config", "share", "run"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            pw = pwd.getpwnam(OS_USER)
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                try:
                    os.chown(path, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
                except FileNotFoundError:
                    pass
        (self.data_dir / "run").chmod(0o700)

    def _write_state(self) -> None:
        process.write_state(self.data_dir, STATE_FILE, {"ports": self.ports, "pids": self.pids,
                                                       "url": self.url if all(n in self.ports for n in NODES) else ""})

    # -- keepers --------------------------------------------------------------------------------
    def _keeper(self, name: str) -> None:
        """``pg_autoctl run`` for ``name``, detached, logging to ``name.log``."""
        pgdata = self.pgdata(name)
        postmaster = pgdata / "postmaster.pid"
        try:  # a SIGKILLed postmaster nobody reaped would block the start
            pid = int(postmaster.read_text().split("\n", 1)[0])
            if not pid_alive(pid):
                postmaster.unlink()
        except (OSError, ValueError):
            pass
        for stale in (self.data_dir / "run").rglob("pg_autoctl.pid"):
            if name in stale.parts or str(pgdata).lstrip("/") in str(stale):
                try:
                    if not pid_alive(int(stale.read_text().split("\n", 1)[0])):
                        stale.unlink()
                except (OSError, ValueError):
                    stale.unlink(missing_ok=True)
        with self.log_file(name).open("ab") as log:
            proc = subprocess.Popen(self._cmd([self.autoctl, "run", "--pgdata", str(pgdata)]), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
        self._procs[name] = proc
        self.pids[name] = proc.pid
        self._write_state()
        _ATTACHED.add(self)

    def _keeper_alive(self, name: str) -> bool:
        pid = self.pids.get(name)
        return pid is not None and pid_alive(pid)

    def is_running(self) -> bool:
        return any(self._keeper_alive(n) for n in (MONITOR, *NODES))

    # -- state from the monitor ---------------------------------------------------------------
    def states(self) -> dict[str, tuple[str, str]]:
        """node name -> (reported state, goal state), as the monitor has them."""
        out = self._psql(self.ports[MONITOR], "SELECT nodename, reportedstate, goalstate FROM pgautofailover.node",
                         user="autoctl_node", database="pg_auto_failover")
        rows = [line.split("|") for line in out.splitlines() if line]
        return {r[0]: (r[1], r[2]) for r in rows}

    def primary(self) -> str | None:
        """The node the monitor has as primary (or wait_primary / single)."""
        for name, (reported, goal) in self.states().items():
            if reported in ("primary", "wait_primary", "single") and goal == reported:
                return name
        return None

    def _wait(self, what: str, done, timeout: float) -> float:  # noqa: ANN001
        started = time.monotonic()
        last: object = None
        while True:
            try:
                last = self.states()
                if done(last):
                    return time.monotonic() - started
            except PostgresHAError as exc:
                last = exc
            if time.monotonic() - started > timeout:
                raise PostgresHAError(f"{what}: not within {timeout:.0f} s (monitor: {last})\n{self.log_tails()}")
            time.sleep(0.25)

    def _accepts(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    # -- start ------------------------------------------------------------------------------------
    def start(self, timeout: float = 240) -> "PostgresHA":
        """Create on first start (monitor, node a, node b), run the keepers, wait for
        primary and secondary."""
        if self.bin_dir is None:
            raise PostgresHAError("no PostgreSQL server binaries found (apt-get install postgresql)")
        if self.autoctl is None:
            raise PostgresHAError("no pg_autoctl (apt-get install postgresql-15-auto-failover pg-auto-failover-cli)")
        if self.is_running():
            raise PostgresHAError(f"a pair already runs from {self.data_dir}")
        started = time.monotonic()
        for name in (MONITOR, *NODES):
            self.ports.setdefault(name, free_port())
        self._prepare_dir()
        if not (self.pgdata(MONITOR) / "PG_VERSION").exists():
            self._run([self.autoctl, "create", "monitor", "--pgdata", str(self.pgdata(MONITOR)),
                       "--pgport", str(self.ports[MONITOR]), "--hostname", "127.0.0.1", "--auth", "trust",
                       "--no-ssl"])
        self._keeper(MONITOR)
        deadline = time.monotonic() + timeout
        while not self._accepts(self.ports[MONITOR]):
            if time.monotonic() > deadline:
                raise PostgresHAError(f"the monitor does not start\n{self.log_tails()}")
            time.sleep(0.2)
        self._wait("the monitor answers", lambda states: True, 60)
        for setting, value in FAST_FAILOVER.items():
            self._psql(self.ports[MONITOR], f"ALTER SYSTEM SET {setting} = '{value}'", database="pg_auto_failover")
        self._psql(self.ports[MONITOR], "SELECT pg_reload_conf()", database="pg_auto_failover")
        for name in NODES:
            if not (self.pgdata(name) / "PG_VERSION").exists():
                self._create_node(name, first=name == NODES[0])
            self._keeper(name)
            if name == NODES[0] and not (self.pgdata(NODES[1]) / "PG_VERSION").exists():
                self._wait("node a is the single primary", lambda s: s.get("a", ("", ""))[0] in (
                    "single", "primary", "wait_primary"), timeout)
                self._first_node_ready()
        self.wait_pair(max(30.0, deadline - time.monotonic()))
        self._write_state()
        self.startup_seconds = time.monotonic() - started
        return self

    def _create_node(self, name: str, first: bool) -> None:
        self._run([self.autoctl, "create", "postgres", "--pgdata", str(self.pgdata(name)),
                   "--pgport", str(self.ports[name]), "--hostname", "127.0.0.1", "--name", name,
                   "--monitor", self.monitor_uri, "--auth", "trust", "--no-ssl", "--pgctl",
                   str(self.bin_dir / "pg_ctl")])
        self._run([self.autoctl, "config", "set", "--pgdata", str(self.pgdata(name)),
                   "timeout.network_partition_timeout", PARTITION_TIMEOUT])
        if first:
            conf = self.pgdata(name) / "postgresql.conf"
            conf.write_text(conf.read_text() + SETTINGS)
            hba = self.pgdata(name) / "pg_hba.conf"
            hba.write_text(HBA_FIRST + hba.read_text())  # b copies both with its base backup

    def _first_node_ready(self) -> None:
        """The services' superuser (password authentication), on the first primary."""
        port = self.ports[NODES[0]]
        deadline = time.monotonic() + 60
        while True:
            try:
                if self._psql(port, "SELECT pg_is_in_recovery()") == "f":
                    break
            except PostgresHAError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        self._psql(port, f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{USER}') THEN "
                         f"CREATE ROLE {USER} SUPERUSER LOGIN PASSWORD '{PASSWORD}'; END IF; END $$")
        self._psql(port, "SELECT pg_reload_conf()")

    def wait_pair(self, timeout: float = 120) -> float:
        """Until one node is primary and the other secondary (seconds waited)."""
        return self._wait("primary and secondary", lambda s: sorted(r for r, g in s.values() if r == g)
                          == ["primary", "secondary"] and len(s) == 2, timeout)

    # -- faults -------------------------------------------------------------------------------------
    def kill_node(self, name: str) -> None:
        """SIGKILL the node's keeper and its PostgreSQL, as a machine that dies."""
        pid = self.pids.get(name)
        if pid is None or not pid_alive(pid):
            return
        victims = [pid, *descendants(pid)]
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc = self._procs.pop(name, None)
        if proc is not None:
            proc.wait(10)
        # Dead is enough (a zombie nobody reaps holds its pid until the keeper's next
        # start, which clears the stale postmaster.pid itself).
        deadline = time.monotonic() + 10
        while any(pid_alive(v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill_primary(self) -> str:
        """SIGKILL the current primary node; its name."""
        name = self.primary()
        if name is None:
            raise PostgresHAError(f"no primary to kill (monitor: {self.states()})")
        self.kill_node(name)
        return name

    def wait_failover(self, old: str, timeout: float = 90) -> float:
        """Until the other node is promoted and accepts writes (seconds waited: count from
        the kill to know the failover's length)."""
        other = next(n for n in NODES if n != old)

        def promoted(states: dict) -> bool:
            reported, goal = states.get(other, ("", ""))
            return reported == goal and reported in ("wait_primary", "primary")

        waited = self._wait(f"node {other} promoted", promoted, timeout)
        started = time.monotonic()
        while True:
            try:
                if self._psql(self.ports[other], "SELECT pg_is_in_recovery()") == "f":
                    return waited + time.monotonic() - started
            except PostgresHAError:
                pass
            if time.monotonic() - started > timeout:
                raise PostgresHAError(f"node {other} promoted but still read-only\n{self.log_tails()}")
            time.sleep(0.2)

    def restart_node(self, name: str, timeout: float = 120) -> float:
        """Start a node's keeper again: an old primary rejoins as standby (pg_rewind);
        seconds until the pair is primary and secondary again."""
        started = time.monotonic()
        self._keeper(name)
        self.wait_pair(timeout)
        return time.monotonic() - started

    # -- stop ---------------------------------------------------------------------------------------
    def stop(self, timeout: float = 60) -> None:
        """``pg_autoctl stop`` for the nodes then the monitor; SIGKILL what is left."""
        _ATTACHED.discard(self)
        for name in (*NODES, MONITOR):
            if self._keeper_alive(name):
                self._run([self.autoctl, "stop", "--pgdata", str(self.pgdata(name))], check=False, timeout=timeout)
                deadline = time.monotonic() + timeout
                while self._keeper_alive(name) and time.monotonic() < deadline:
                    time.sleep(0.2)
            self.kill_node(name)

    def kill(self) -> None:
        _ATTACHED.discard(self)
        for name in (*NODES, MONITOR):
            self.kill_node(name)

    def detach(self) -> None:
        _ATTACHED.discard(self)

    def restart(self, timeout: float = 240) -> "PostgresHA":
        self.stop()
        return self.start(timeout)

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(process.log_tail(self.log_file(n), lines) for n in (MONITOR, *NODES))

    def __enter__(self) -> "PostgresHA":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PostgresHA(ports={self.ports!r}, data_dir={str(self.data_dir)!r})"


_ATTACHED = process.Attached()


def main(argv: list[str] | None = None) -> int:
    args = process.parser(
        "python -m tests.infra.postgres_ha", __doc__.split("\n\n")[0], noun="primary/standby pair",
        prints="multi-host URL", default_timeout=240, start_options=lambda p: None,
        data_help="directory for the monitor, the two nodes, logs and state",
        port_help="(ignored: free ports are chosen)").parse_args(argv)
    ha = PostgresHA(args.data)
    if args.command in ("start", "restart"):
        return process.start_command(
            ha, args.command == "restart", args.timeout, PostgresHAError,
            started=lambda: f"pg_auto_failover pair started in {ha.startup_seconds:.1f} s (monitor port "
                            f"{ha.ports[MONITOR]}, primary {ha.primary()}, logs in {ha.data_dir})",
            address=lambda: ha.url)
    if args.command == "status":
        running = ha.is_running()
        if running:
            print(f"monitor: {ha.states()}", file=sys.stderr)
        return process.status_command(running, ha.url if all(n in ha.ports for n in NODES) else "")
    return process.stop_command(ha, args.command, name="PostgreSQL pair", absent=f"no pair runs from {ha.data_dir}")


if __name__ == "__main__":
    sys.exit(main())
