"""The whole system as separate processes on private engines, for the faults-under-load suite.

``FaultSystem`` starts, in a work directory of its own:

* a private PostgreSQL (tests/infra/postgres_local.py), one database per service, as
  ``khaibao up --database-url`` makes them;
* a private single-node Kafka (tests/infra/kafka_local.py, jars from KHAIBAO_KAFKA_CLASSPATH);
* a real SMTP server (aiosmtpd) that can be stopped and started again on the same port;
* the five services, each one ``python -m libs.common.cli serve <service>`` process that can
  be SIGKILLed and started again.

Private engines, so that stopping Kafka or restarting PostgreSQL never disturbs the engines
other tests share. Tokens for officials are signed with the system's own private key, as
provisioning signs them.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from libs.common.auth import Principal, Role, TokenSigner, generate_key_pair, load_private_key
from libs.common.settings import SERVICES
from tests.infra.kafka_local import LocalKafka
from tests.infra.postgres_local import LocalPostgres, free_port

ROOT = Path(__file__).resolve().parents[2]
DISTRICT = "79/787"            # Huyện Cần Giờ
COMMUNE_CODE = "27664"          # Thị trấn Cần Thạnh
CITY = "79"


class EnginesMissing(RuntimeError):
    """PostgreSQL binaries, Java or the Kafka jars are not there: the suite cannot run."""


def kafka_classpath() -> Path:
    value = os.environ.get("KHAIBAO_KAFKA_CLASSPATH") or str(ROOT / "deploy" / "kafka" / "target" / "libs")
    if not any(Path(value).glob("kafka_2.13-*.jar")):
        raise EnginesMissing(f"no kafka_2.13 jar in {value} (set KHAIBAO_KAFKA_CLASSPATH; "
                             "mvn -q -B -f deploy/kafka/pom.xml package)")
    if shutil.which(os.environ.get("JAVA", "java")) is None:
        raise EnginesMissing("no java on PATH")
    return Path(value)


def check_engines() -> Path:
    """The Kafka classpath, after checking that both engines can be started here."""
    from tests.infra.postgres_local import find_pg_bin

    if find_pg_bin() is None:
        raise EnginesMissing("no PostgreSQL server binaries (apt-get install postgresql, or set KHAIBAO_PG_BIN)")
    return kafka_classpath()


# --- the SMTP server ------------------------------------------------------------------------

USERNAME = re.compile(r"Tên đăng nhập: (\S+)")


class Inbox:
    """What the SMTP server accepted: the usernames of the credentials e-mails, with counts."""

    def __init__(self) -> None:
        self.usernames: Counter[str] = Counter()
        self.messages = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802, ANN201 - aiosmtpd's hook
        from email import message_from_bytes
        from email.policy import default

        message = message_from_bytes(envelope.original_content or envelope.content, policy=default)
        body = message.get_body(preferencelist=("plain",))
        found = USERNAME.search(body.get_content()) if body is not None else None
        if found:
            self.usernames[found.group(1)] += 1
        self.messages += 1
        return "250 Message accepted for delivery"


class MailServer:
    """aiosmtpd on a fixed loopback port; ``stop()`` makes the port refuse connections."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def running(self) -> bool:
        return self.controller is not None


# --- service processes ------------------------------------------------------------------------

@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "libs.common.cli", "serve", self.name, "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    async def wait_healthy(self, timeout: float = 90) -> float:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with code {self.proc and self.proc.returncode}:\n"
                                       f"{self.log_tail()}")
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"{self.name} not healthy within {timeout:.0f} s:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --- the system --------------------------------------------------------------------------------

@dataclass
class Timing:
    """Durations of one run (short in CI, long on demand)."""

    long: bool = False
    rate: float = 50.0                 # declarations per second
    registration_interval: float = 0.4  # one unit registers every ... seconds
    official_interval: float = 1.0      # the district forwards and the city issues every ... seconds
    baseline: float = 3.0
    settle: float = 2.0                 # load continues this long after a fault is over
    kafka_down: float = 10.0
    smtp_down: float = 12.0             # stands for the 10 minutes of the issue, scaled ...
    email_retry_period: float = 6.0     # ... like the retry period (6 h in production)
    quiescence: float = 60.0            # give up when nothing has moved for this long
    give_up: float = 60.0               # a client retries one declaration this long

    @classmethod
    def of(cls, long: bool) -> "Timing":
        if not long:
            return cls()
        return cls(long=True, rate=100.0, registration_interval=0.3, baseline=10.0, settle=10.0, kafka_down=60.0,
                   smtp_down=600.0, email_retry_period=300.0, quiescence=180.0, give_up=180.0)


@dataclass
class FaultSystem:
    work: Path
    timing: Timing
    classpath: Path
    pg: LocalPostgres = field(init=False)
    kafka: LocalKafka = field(init=False)
    mail: MailServer = field(init=False)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    database_urls: dict[str, str] = field(default_factory=dict)
    signer: TokenSigner | None = None
    venue_codes: list[str] = field(default_factory=list)
    # Settings of every service beyond the ones below (bench/ha.py: the replication of topics).
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The postgres OS user must reach its data dir: the work dir is world-traversable.
        self.work.mkdir(parents=True, exist_ok=True)
        self.work.chmod(0o755)
        self.pg = LocalPostgres(self.work / "postgres")
        self.kafka = LocalKafka(self.classpath, self.work / "kafka")
        self.mail = MailServer()

    # -- start and stop ----------------------------------------------------------------------
    async def start(self) -> None:
        from libs.common.cli import _create_databases

        await asyncio.gather(asyncio.to_thread(self.pg.start, 90), asyncio.to_thread(self.kafka.start, 180))
        self.database_urls = await _create_databases(self.pg.url)
        data_dir = self.work / "data"
        private, public = data_dir / "keys" / "token-private.pem", data_dir / "keys" / "token-public.pem"
        generate_key_pair(private, public)
        self.signer = TokenSigner(load_private_key(private), issuer="khaibao-provisioning", audience="khaibao",
                                  ttl_seconds=24 * 3600)
        self.mail.start()
        ports = {s: free_port() for s in SERVICES}
        env = {k: v for k, v in os.environ.items() if not k.startswith("KHAIBAO_")}
        t = self.timing
        env.update({
            "PYTHONUNBUFFERED": "1",
            "KHAIBAO_ENVIRONMENT": "development",
            "KHAIBAO_DATA_DIR": str(data_dir),
            "KHAIBAO_DEMO": "false",
            "KHAIBAO_PROVISIONING_DEMO": "true",     # two demo venues to declare at
            "KHAIBAO_SERVICE_URLS": json.dumps({s: f"http://127.0.0.1:{p}" for s, p in ports.items()}),
            "KHAIBAO_PUBLIC_BASE_URL": "http://127.0.0.1:8100",
            "KHAIBAO_AUTH_PUBLIC_KEY_FILE": str(public),
            "KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE": str(private),
            "KHAIBAO_BUS_URL": f"kafka://{self.kafka.bootstrap}",
            "KHAIBAO_KAFKA_PARTITIONS": "2",
            "KHAIBAO_RELAY_POLL_INTERVAL": "0.1",
            "KHAIBAO_LOG_LEVEL": "WARNING",
            # The load comes from one address (loopback): the per-address limits are not under test.
            "KHAIBAO_RATE_LIMIT_ENABLED": "false",
            # Every registration of the load comes from one address, with one e-mail domain
            # and similar names: the spam checks (tests/intake/test_spam.py) are off here.
            "KHAIBAO_INTAKE_REGISTRATIONS_PER_ADDRESS_HOUR": "0",
            "KHAIBAO_INTAKE_PENDING_PER_TAX_CODE": "0",
            "KHAIBAO_INTAKE_PENDING_PER_EMAIL": "0",
            "KHAIBAO_INTAKE_SPAM_BURST_COUNT": "0",
            "KHAIBAO_INTAKE_SPAM_SAME_NAME": "false",
            "KHAIBAO_NOTIFICATION_SMTP_HOST": "127.0.0.1",
            "KHAIBAO_NOTIFICATION_SMTP_PORT": str(self.mail.port),
            "KHAIBAO_NOTIFICATION_SMTP_TIMEOUT": "5",
            "KHAIBAO_NOTIFICATION_DELIVERY_POLL_INTERVAL": "0.2",
            "KHAIBAO_NOTIFICATION_DELIVERY_LEASE_SECONDS": "5",
            "KHAIBAO_NOTIFICATION_EMAIL_RETRY_INITIAL_SECONDS": str(min(1.0, t.email_retry_period / 6)),
            "KHAIBAO_NOTIFICATION_EMAIL_RETRY_MAX_SECONDS": str(max(1.0, t.email_retry_period / 4)),
            "KHAIBAO_NOTIFICATION_EMAIL_RETRY_PERIOD_SECONDS": str(t.email_retry_period),
        })
        for service in SERVICES:
            env[f"KHAIBAO_{service.upper()}_DATABASE_URL"] = self.database_urls[service]
        env.update(self.extra_env)
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        for service in SERVICES:
            self.services[service] = ServiceProcess(service, ports[service], env, logs / f"{service}.log")
            self.services[service].start()
        await asyncio.gather(*(p.wait_healthy(120) for p in self.services.values()))
        self.venue_codes = await self._venues()

    async def _venues(self, timeout: float = 90) -> list[str]:
        """The demo venues, once the declaration service has its copy of them."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            codes: list[str] = []
            while time.monotonic() < deadline:
                try:
                    listed = await client.get(f"{self.url('provisioning')}/api/venues", headers=self.headers(
                        Role.CITY_DIC, CITY))
                    codes = [v["code"] for v in listed.json()] if listed.status_code == 200 else []
                    if codes and all([(await client.get(f"{self.url('declaration')}/api/venues/{c}")).status_code
                                      == 200 for c in codes]):
                        return codes
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
        raise RuntimeError(f"the demo venues did not reach the declaration service (provisioning has {codes})")

    async def close(self) -> None:
        for process in self.services.values():
            await asyncio.to_thread(process.stop, 10)
        self.mail.stop()
        await asyncio.to_thread(self.kafka.kill)
        await asyncio.to_thread(self.pg.kill)

    # -- addresses and tokens -----------------------------------------------------------------
    def url(self, service: str) -> str:
        return self.services[service].url

    def headers(self, role: Role, jurisdiction: str) -> dict[str, str]:
        assert self.signer is not None
        principal = Principal(account_id=f"00000000-0000-4000-9000-{abs(hash((role, jurisdiction))) % 10**12:012d}",
                              username=f"reliability.{role}", name=f"Cán bộ kiểm thử {role}", role=role,
                              jurisdiction=jurisdiction)
        return {"authorization": f"Bearer {self.signer.sign(principal)}"}

    def pg_url(self, service: str) -> str:
        """The service's database for asyncpg (verification reads only)."""
        return self.database_urls[service].replace("postgresql+asyncpg://", "postgresql://")

    # -- faults ------------------------------------------------------------------------------
    async def kill_and_restart(self, service: str, down: float = 1.0) -> float:
        """SIGKILL the service, start it again after ``down`` seconds; seconds until healthy again."""
        process = self.services[service]
        started = time.monotonic()
        await asyncio.to_thread(process.kill)
        await asyncio.sleep(down)
        process.start()
        await process.wait_healthy(120)
        return time.monotonic() - started

    async def stop_kafka(self) -> None:
        await asyncio.to_thread(self.kafka.stop)

    async def start_kafka(self) -> None:
        await asyncio.to_thread(self.kafka.start, 180)

    async def restart_postgres(self) -> float:
        started = time.monotonic()
        await asyncio.to_thread(self.pg.restart, 90)
        return time.monotonic() - started

    async def credentials_in_channel(self) -> int:
        """Credentials deliveries that went to the Support Channel because sending failed."""
        import asyncpg

        connection = await asyncpg.connect(self.pg_url("notification"), timeout=10)
        try:
            return await connection.fetchval(
                "SELECT count(*) FROM deliveries WHERE status = 'channel' AND channel_reason = 'send_failed'")
        finally:
            await connection.close()

    def exited(self) -> list[str]:
        """Services whose process has exited on its own (none should)."""
        return [s for s, p in self.services.items() if p.proc is None or p.proc.poll() is not None]
