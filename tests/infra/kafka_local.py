"""A throwaway single-node Apache Kafka broker (KRaft: broker and controller in one JVM).

Used where there is no Docker engine: by CI (``.ci/run``) to provide the shared broker of
the test suite, and by tests that need a private broker they can stop, kill and restart.
The broker runs from a plain classpath directory built by ``deploy/kafka/pom.xml``:

    mvn -q -B -f deploy/kafka/pom.xml clean package      # -> deploy/kafka/target/libs/

Command line (the broker is detached and survives the command; state lives in DATA):

    python -m tests.infra.kafka_local start   --classpath deploy/kafka/target/libs --data DATA [--port N]
    python -m tests.infra.kafka_local stop    --data DATA
    python -m tests.infra.kafka_local kill    --data DATA
    python -m tests.infra.kafka_local restart --classpath deploy/kafka/target/libs --data DATA
    python -m tests.infra.kafka_local status  --data DATA

``start`` prints the bootstrap address (``127.0.0.1:PORT``) on stdout and nothing else.

In Python::

    kafka = LocalKafka(classpath_dir, data_dir)
    kafka.start()            # formats the storage on first start, then waits until it serves
    kafka.bootstrap          # "127.0.0.1:PORT"
    kafka.kill(); kafka.restart()   # same data dir and ports, no re-formatting

Standard library only, and no imports from the project, so that it can run before the
virtual environment exists.
"""
from __future__ import annotations

import base64
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from . import process
from .kafka_config import DEFAULT_HEAP_OPTS, DEFAULT_JVM_OPTS, LOG4J2_PROPERTIES, SERVER_PROPERTIES
from .kafka_probe import probe
from .process import free_port, pid_alive

__all__ = ["LocalKafka", "KafkaStartError", "free_port", "main"]

STATE_FILE = "kafka-local.json"
PID_FILE = "kafka.pid"
LOG_FILE = "kafka.log"
CONFIG_FILE = "server.properties"
LOG4J_FILE = "log4j2.properties"
STORAGE_DIR = "kraft-logs"
STARTED_MARKER = "Kafka Server started"


class KafkaStartError(RuntimeError):
    """The broker did not come up; the message ends with the tail of its log."""


def _random_cluster_id() -> str:
    # Kafka's Uuid: 16 random bytes, base64url without padding. An id starting with "-"
    # would be read as an option by the storage tool, so draw again.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class LocalKafka:
    """A single-node KRaft Kafka broker running from ``classpath_dir/*`` with its state in ``data_dir``."""

    # KAFKA_HEAP_OPTS wins over it; a node of kafka_cluster's three takes less.
    default_heap_opts = DEFAULT_HEAP_OPTS

    def __init__(self, classpath_dir: Path | str, data_dir: Path | str, port: int | None = None,
                 controller_port: int | None = None, java: str | None = None) -> None:
        self.classpath_dir = Path(classpath_dir).resolve()
        self.data_dir = Path(data_dir).resolve()
        self.java = java or os.environ.get("JAVA") or "java"
        state = self._read_state()
        # Reuse the ports of an earlier start in the same data dir unless told otherwise.
        self.port = port or state.get("port")
        self.controller_port = controller_port or state.get("controller_port")
        self._proc: subprocess.Popen | None = None
        self._pid: int | None = None
        self.startup_seconds: float | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def config_file(self) -> Path:
        return self.data_dir / CONFIG_FILE

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / STORAGE_DIR

    @property
    def pid_file(self) -> Path:
        return self.data_dir / PID_FILE

    @property
    def bootstrap(self) -> str:
        if not self.port:
            raise RuntimeError("the broker has no port yet; call start() first")
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        if self._proc is not None:
            return self._proc.pid
        if self._pid is not None:
            return self._pid
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid
        if pid is None:
            return False
        if self._proc is not None:
            return self._proc.poll() is None
        return pid_alive(pid) and self._is_our_process(pid)

    def _is_our_process(self, pid: int) -> bool:
        args = process.cmdline(pid)
        return "kafka.Kafka" in args and str(self.config_file) in args

    # -- state ---------------------------------------------------------------------------
    def _read_state(self) -> dict:
        return process.read_state(self.data_dir, STATE_FILE)

    def _write_state(self) -> None:
        state = {"port": self.port, "controller_port": self.controller_port,
                 "classpath": str(self.classpath_dir), "bootstrap": self.bootstrap}
        process.write_state(self.data_dir, STATE_FILE, state)

    # -- commands ------------------------------------------------------------------------
    def _classpath(self) -> str:
        if not any(self.classpath_dir.glob("kafka_2.13-*.jar")):
            raise KafkaStartError(
                f"no kafka_2.13 jar in {self.classpath_dir}; build it with "
                "`mvn -q -B -f deploy/kafka/pom.xml clean package`")
        return f"{self.classpath_dir}/*"

    def _jvm_opts(self) -> list[str]:
        heap = os.environ.get("KAFKA_HEAP_OPTS") or self.default_heap_opts
        perf = os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS") or DEFAULT_JVM_OPTS
        return [*shlex.split(heap), *shlex.split(perf),
                f"-Dlog4j2.configurationFile={self.data_dir / LOG4J_FILE}",
                f"-Dkafka.logs.dir={self.data_dir}"]

    def _properties(self) -> str:
        return SERVER_PROPERTIES.format(port=self.port, controller_port=self.controller_port,
                                        log_dirs=self.storage_dir)

    def _format_options(self) -> list[str]:
        """The storage tool's options besides the config: a quorum of this node alone."""
        return ["--cluster-id", _random_cluster_id(), "--standalone"]

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self._properties())
        (self.data_dir / LOG4J_FILE).write_text(LOG4J2_PROPERTIES)

    def is_formatted(self) -> bool:
        return (self.storage_dir / "meta.properties").exists()

    def _format(self) -> None:
        cmd = [self.java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               f"-Dlog4j2.configurationFile={self.data_dir / LOG4J_FILE}",
               "-cp", self._classpath(), "kafka.tools.StorageTool", "format",
               "--config", str(self.config_file), *self._format_options()]
        with open(self.log_file, "ab") as log:
            log.write(f"--- formatting storage: {shlex.join(cmd)}\n".encode())
            log.flush()
            rc = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        if rc != 0:
            raise KafkaStartError(f"formatting the Kafka storage failed (exit {rc})\n{self.log_tail()}")

    def start(self, timeout: float = 90) -> "LocalKafka":
        """Start the broker (formatting the storage the first time) and wait until it serves."""
        if self.is_running():
            raise KafkaStartError(f"a broker already runs from {self.data_dir} (pid {self.pid})")
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self._write_config()
        self._write_state()
        if not self.is_formatted():
            self._format()

        cmd = [self.java, *self._jvm_opts(), "-cp", self._classpath(), "kafka.Kafka", str(self.config_file)]
        with open(self.log_file, "ab") as log:
            log.write(f"--- starting broker: {shlex.join(cmd)}\n".encode())
            log.flush()
            log_offset = log.tell()
            # A session of its own: Ctrl-C in a terminal or pytest does not reach the JVM,
            # and a detached broker survives the command line that started it.
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=self.data_dir,
                                          start_new_session=True)
        self._pid = self._proc.pid
        self.pid_file.write_text(f"{self._proc.pid}\n")
        _ATTACHED.add(self)
        started = time.monotonic()
        try:
            self._wait_until_serving(timeout, log_offset)
        except BaseException:
            self.kill()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_until_serving(self, timeout: float, log_offset: int) -> None:
        deadline = time.monotonic() + timeout
        marker_seen = False
        first_ok: float | None = None
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise KafkaStartError(
                    f"the Kafka broker exited with code {self._proc.returncode} while starting\n"
                    f"{self.log_tail()}")
            if not marker_seen:
                marker_seen = STARTED_MARKER in self._log_since(log_offset)
            try:
                brokers = probe("127.0.0.1", self.port)
            except OSError:
                brokers = 0
            now = time.monotonic()
            if brokers >= 1:
                first_ok = first_ok or now
                # The log line is the primary signal; answering Metadata for a few seconds
                # without it (another log layout) is accepted as well.
                if marker_seen or now - first_ok >= 5:
                    return
            if now > deadline:
                raise KafkaStartError(
                    f"the Kafka broker did not start serving on {self.bootstrap} within "
                    f"{timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.25)

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return process.log_tail(self.log_file, lines)

    def _wait_exit(self, timeout: float) -> bool:
        pid = self.pid
        if pid is None:
            return True
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _signal(self, sig: int) -> bool:
        pid = self.pid
        if pid is None or not self.is_running():
            return False
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (a controlled shutdown), then SIGKILL after ``timeout`` seconds."""
        if self._signal(signal.SIGTERM) and not self._wait_exit(timeout):
            self._signal(signal.SIGKILL)
            self._wait_exit(10)
        self._forget()

    def kill(self) -> None:
        """SIGKILL: the broker dies as in a crash; restart() recovers its logs."""
        if self._signal(signal.SIGKILL):
            self._wait_exit(10)
        self._forget()

    def restart(self, timeout: float = 90) -> "LocalKafka":
        """Stop if running, then start again on the same ports and data, without formatting."""
        self.stop()
        return self.start(timeout)

    def _forget(self) -> None:
        _ATTACHED.discard(self)
        self._proc = None
        self._pid = None
        try:
            self.pid_file.unlink()
        except FileNotFoundError:
            pass

    def detach(self) -> None:
        """Leave the broker running when this Python process exits (for the command line)."""
        _ATTACHED.discard(self)

    def __enter__(self) -> "LocalKafka":
        return self.start() if not self.is_running() else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalKafka(bootstrap={self.port and self.bootstrap!r}, data_dir={str(self.data_dir)!r})"


# Brokers started by this process (and not detached) are killed when it exits, so that a
# crashed test run does not leave JVMs behind.
_ATTACHED = process.Attached()


def main(argv: list[str] | None = None) -> int:
    def classpath(p) -> None:  # noqa: ANN001 - argparse.ArgumentParser
        p.add_argument("--classpath", type=Path, required=True, help="directory with the Kafka jars")

    args = process.parser(
        "python -m tests.infra.kafka_local", __doc__.split("\n\n")[0], noun="broker", prints="bootstrap address",
        default_timeout=90, start_options=classpath, data_help="directory for config, logs and pid file",
        port_help="PLAINTEXT port (default: a free one)").parse_args(argv)

    if args.command in ("start", "restart"):
        kafka = LocalKafka(args.classpath, args.data, port=args.port)
        return process.start_command(
            kafka, args.command == "restart", args.timeout, KafkaStartError,
            started=lambda: f"Kafka started in {kafka.startup_seconds:.1f} s (pid {kafka.pid}, log {kafka.log_file})",
            address=lambda: kafka.bootstrap)

    state = LocalKafka(Path("."), args.data)._read_state()
    kafka = LocalKafka(state.get("classpath", "."), args.data)
    if args.command == "status":
        return process.status_command(kafka.is_running(), kafka.port and kafka.bootstrap or "")
    return process.stop_command(kafka, args.command, name="Kafka", absent=f"no broker runs from {kafka.data_dir}",
                                on_absent=kafka._forget)


if __name__ == "__main__":
    sys.exit(main())
