"""Continuous backups of a throwaway PostgreSQL with pgBackRest (Debian: ``pgbackrest``).

One stanza (``khaibao``) covers the whole cluster, so every service database in it (the
five ``khaibao_<service>`` databases that ``khaibao up --database-url`` creates) is backed
up and restored together, to one consistent point in time. WAL archiving on
(``archive_command = pgbackrest archive-push``), full and incremental backups, to a local
directory standing for the backup store (``repo1-path``; in production an object store or
a mounted volume: deploy/pgbackrest/pgbackrest.conf).

Retention: backups hold personal data, so no backup outlives the data-retention setting
(``KHAIBAO_DATA_RETENTION_DAYS``, 21 days by default). ``expired(backups, now, days)`` is the
rule, tested with a moved clock (tests/reliability/test_retention_everywhere.py): a backup
set (a full backup and the incrementals that depend on it) expires once its full backup is
older than ``days``, so a row erased from the live databases lingers in the backup store at
most ``days`` longer. pgBackRest's own time retention (``repo1-retention-full-type=time``)
keeps one full backup older than the window (to restore to its start) and never expires
the newest one, hence this rule (``pgbackrest expire --set LABEL`` for each) on top of it;
with a weekly full backup, points in time of the last 14 to 21 days can be restored.

In Python::

    backups = PgBackRest(pg, repo_dir); backups.configure()      # archiving on, stanza created
    backups.backup("full"); backups.backup("incr"); backups.info()
    pg.kill(); backups.restore(target="2026-12-08 04:00:00+00")   # into an empty data dir

Standard library only, and no imports from the project.
"""
from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .postgres_local import OS_USER, USER, LocalPostgres, PostgresStartError

__all__ = ["STANZA", "BackupError", "PgBackRest", "expired", "find_pgbackrest"]

STANZA = "khaibao"


class BackupError(PostgresStartError):
    """A pgBackRest command failed; the message has its output."""


def find_pgbackrest() -> str | None:
    return shutil.which("pgbackrest") or ("/usr/bin/pgbackrest" if Path("/usr/bin/pgbackrest").exists() else None)


def expired(backups: list[dict], now: datetime, retention_days: float) -> list[str]:
    """Labels of the full backups older than the retention: each goes with its incrementals.

    ``backups`` is pgBackRest's ``info --output=json`` list for the stanza (each with
    ``label``, ``type`` and ``timestamp.stop``). A full backup holds the rows of its day;
    its incrementals cannot restore without it, so the whole set goes when the full backup
    is ``retention_days`` old: a row erased from the live databases lingers in the backup
    store at most ``retention_days`` after its erasure."""
    limit = now - timedelta(days=retention_days)
    return [b["label"] for b in sorted(backups, key=lambda b: b["timestamp"]["stop"])
            if b["type"] == "full" and datetime.fromtimestamp(b["timestamp"]["stop"], UTC) < limit]


class PgBackRest:
    """pgBackRest for one LocalPostgres; the repository and logs under ``repo_dir``."""

    def __init__(self, pg: LocalPostgres, repo_dir: Path | str, retention_days: float = 21) -> None:
        self.pg = pg
        self.repo_dir = Path(repo_dir).resolve()
        self.retention_days = retention_days
        self.binary = find_pgbackrest()
        self.config = self.repo_dir / "pgbackrest.conf"

    def _socket_dir(self) -> str:
        """Where LocalPostgres puts its Unix socket (local connections are trusted)."""
        return str(self.pg.data_dir) if len(str(self.pg.data_dir)) <= 80 else "/var/run/postgresql"

    def _write_config(self) -> None:
        for sub in ("repo", "log", "lock", "spool"):
            (self.repo_dir / sub).mkdir(parents=True, exist_ok=True)
        socket_dir = self._socket_dir()
        # Time-based retention from the data-retention setting; ``expired`` adds the rule for
        # the newest set (see the module's docstring).
        self.config.write_text(f"""\
[global]
repo1-path={self.repo_dir / 'repo'}
repo1-retention-full-type=time
repo1-retention-full={max(1, int(self.retention_days))}
log-path={self.repo_dir / 'log'}
lock-path={self.repo_dir / 'lock'}
spool-path={self.repo_dir / 'spool'}
log-level-console=warn
log-level-file=info
start-fast=y
compress-type=lz4
process-max=1

[{STANZA}]
pg1-path={self.pg.pgdata}
pg1-port={self.pg.port}
pg1-socket-path={socket_dir}
pg1-user={USER}
""")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(OS_USER)
            for path in [self.repo_dir, *self.repo_dir.rglob("*")]:
                os.chown(path, pw.pw_uid, pw.pw_gid, follow_symlinks=False)

    def run(self, *args: str, timeout: float = 600) -> str:
        if self.binary is None:
            raise BackupError("no pgbackrest (apt-get install pgbackrest)")
        cmd = [self.binary, f"--config={self.config}", f"--stanza={STANZA}", *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", OS_USER, "--", *cmd]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, cwd="/")
        if proc.returncode != 0:
            raise BackupError(f"{shlex.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
        return proc.stdout

    def configure(self) -> None:
        """WAL archiving on (a restart of the server), the stanza created and checked."""
        self._write_config()
        archive = f"{self.binary} --config={self.config} --stanza={STANZA} archive-push %p"
        self.pg._run([str(self.pg.bin_dir / "psql"), "-X", "-q", "-h", self._socket_dir(), "-p", str(self.pg.port), "-U", USER,
                      "-d", "postgres", "-c", "ALTER SYSTEM SET archive_mode = 'on'",
                      "-c", f"ALTER SYSTEM SET archive_command = '{archive}'",
                      "-c", "ALTER SYSTEM SET archive_timeout = '30s'"])
        self.pg.restart()
        self.run("stanza-create")
        self.run("check")

    def backup(self, kind: str = "full") -> float:
        """A backup of the running cluster (``full``, ``diff`` or ``incr``); seconds it took."""
        started = time.monotonic()
        self.run("backup", f"--type={kind}")
        return time.monotonic() - started

    def info(self) -> list[dict]:
        """The stanza's backups (pgBackRest's JSON: label, type, sizes, timestamps)."""
        stanzas = json.loads(self.run("info", "--output=json"))
        return stanzas[0]["backup"] if stanzas else []

    def expire(self, now: datetime | None = None) -> list[str]:
        """Expire the sets ``expired`` selects at ``now`` (a moved clock in the tests)."""
        backups = self.info()
        labels = expired(backups, now or datetime.now(UTC), self.retention_days)
        if labels and {b["label"] for b in backups if b["type"] == "full"} <= set(labels):
            # pgBackRest keeps at least one full backup: a new one replaces the expired ones
            # (the weekly full backup of deploy/pgbackrest makes this rare).
            self.backup("full")
        for label in labels:
            self.run("expire", f"--set={label}")
        return labels

    def archive_now(self) -> None:
        """Switch to a new WAL file and wait until the finished one is archived (``check``)."""
        self.run("check")

    @staticmethod
    def target(moment: datetime) -> str:
        """``moment`` as pgBackRest's --target (milliseconds, rounded up: the commits of the
        moment itself are in)."""
        utc = moment.astimezone(UTC)
        millis = -(-utc.microsecond // 1000)
        utc = utc.replace(microsecond=0) + timedelta(milliseconds=millis)
        return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}+00"

    def restore(self, target: str | None = None) -> float:
        """Restore into the (stopped, emptied) data dir; to ``target`` (a timestamp with time
        zone) if given, the recovered server then promoted. Seconds it took (files only: the
        server replays the WAL to the target when it starts)."""
        if self.pg.is_running():
            raise BackupError("stop the server before a restore")
        if self.pg.pgdata.exists():
            shutil.rmtree(self.pg.pgdata)
        self.pg.pgdata.mkdir(mode=0o700)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(OS_USER)
            os.chown(self.pg.pgdata, pw.pw_uid, pw.pw_gid)
        args = ["restore"]
        if target:
            args += ["--type=time", f"--target={target}", "--target-action=promote"]
        started = time.monotonic()
        self.run(*args)
        return time.monotonic() - started
