"""The production topology of docker-compose.yml, started as local processes.

No Docker engine runs here, so the rehearsal reads the deployment files as an operator's
engine would and starts the same programs:

* ``docker-compose.yml``: every khaibao service's ``command`` and ``environment`` as
  written, after compose's variable interpolation (``${VAR}``, ``${VAR:-default}``,
  ``${VAR:?message}``), with the image's ``ENV`` (deploy/Dockerfile) beneath them;
* host names are mapped to what stands for them here: ``postgres:5432`` to a PostgreSQL
  cluster of its own (Debian's binaries; its superuser ``khaibao`` gets the password of the
  ``db_password`` secret, as the postgres image does, and ``deploy/postgres/init`` runs as
  that role), ``kafka:9092`` to the test Kafka (each rehearsal on a bus namespace of its
  own), the mail relay to an aiosmtpd, ``/run/secrets/<name>`` to the file that compose's
  ``secrets:`` names, in the directory ``khaibao keys init`` wrote;
* ``deploy/nginx/nginx.conf`` with its listen ports and upstreams mapped to free ports;
* ``deploy/prometheus/prometheus.yml`` with each DNS discovery replaced by the one address
  of that service (the relabelling as written), its rule files beside it.

Everything listens on 127.0.0.1 only.
"""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.infra.process import free_port

from .processes import MailRelay, Program, base_environment
from .support import DEPLOY, PROMETHEUS, ROOT, SERVICES, _environment, _load_yaml

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
POSTGRES_INIT = DEPLOY / "postgres" / "init"
SECRETS_IN_CONTAINER = "/run/secrets/"
CLOSED = "127.0.0.1:9"  # the discard port: nobody listens, a connection is refused at once

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))")


class InterpolationError(ValueError):
    """A required compose variable is missing (``${VAR:?message}``)."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation of one string."""
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        if op == ":-":
            return value if value else interpolate(arg, env)
        if op == "-":
            return value if value is not None else interpolate(arg, env)
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise InterpolationError(f"{name}: {arg or 'required'}")
        return value or ""

    return _VARIABLE.sub(replace, text)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def load_compose(env: dict[str, str]) -> dict:
    return interpolate_tree(_load_yaml(COMPOSE_FILE), env)


def dockerfile_env(path: Path = DOCKERFILE) -> dict[str, str]:
    """The ``ENV`` of the final stage of the Dockerfile (``KEY=value`` pairs)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages = re.split(r"^FROM\s", text, flags=re.MULTILINE)
    env: dict[str, str] = {}
    for line in stages[-1].splitlines():
        if line.startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[key] = interpolate(value, env)
    return env


def secrets_of(service: dict) -> list[str]:
    return [s if isinstance(s, str) else s["source"] for s in service.get("secrets") or []]


# --- the topology -------------------------------------------------------------------------------

@dataclass
class Rehearsal:
    """docker-compose.yml's production topology in ``work``, mapped to local engines."""

    work: Path
    secrets_dir: Path
    kafka_bootstrap: str
    postgres_port: int
    mail: MailRelay
    namespace: str
    service_ports: dict[str, int] = field(default_factory=dict)
    proxy_ports: dict[int, int] = field(default_factory=dict)
    prometheus_port: int = 0
    programs: dict[str, Program] = field(default_factory=dict)
    compose: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.service_ports = {name: free_port() for name in SERVICES}
        self.prometheus_port = free_port()
        self.compose = load_compose(self.compose_variables())
        listens = {int(p) for p in re.findall(r"^\s*listen\s+(\d+)\s*;", NGINX_CONF.read_text(), re.MULTILINE)}
        self.proxy_ports = {port: free_port() for port in sorted(listens)}

    # -- compose ---------------------------------------------------------------------------------
    def compose_variables(self) -> dict[str, str]:
        """What the operator puts in .env: the public origin and the mail relay (mapped below)."""
        return {"KHAIBAO_PUBLIC_ORIGIN": "http://127.0.0.1", "KHAIBAO_SMTP_HOST": "127.0.0.1",
                "KHAIBAO_SMTP_PORT": str(self.mail.port)}

    def secret_file(self, name: str) -> Path:
        declared = self.compose.get("secrets", {}).get(name)
        if not declared or "file" not in declared:
            raise KeyError(f"secret {name!r} is not declared in docker-compose.yml's secrets:")
        return self.secrets_dir / Path(declared["file"]).name

    def public_url(self, compose_port: int) -> str:
        """The address a browser uses for what compose publishes on ``compose_port``."""
        return f"http://127.0.0.1:{self.proxy_ports[compose_port]}"

    def _map_value(self, key: str, value: str, mounted: list[str], data_dir: Path, metrics_dir: Path) -> str:
        if value.startswith(SECRETS_IN_CONTAINER):
            name = value[len(SECRETS_IN_CONTAINER):]
            if name not in mounted:
                raise AssertionError(f"{key} names the secret {name!r}, which the service does not mount")
            return str(self.secret_file(name))
        value = value.replace("kafka://kafka:9092", f"kafka://{self.kafka_bootstrap}")
        value = value.replace("@postgres:5432/", f"@127.0.0.1:{self.postgres_port}/")
        value = value.replace("/var/lib/khaibao", str(data_dir))
        if key == "PROMETHEUS_MULTIPROC_DIR":
            return str(metrics_dir)
        # Links for browsers: the proxy's published ports, as they are here.
        for port, local in self.proxy_ports.items():
            value = re.sub(rf"(http://127\.0\.0\.1):{port}\b", rf"\1:{local}", value)
        return value

    def service_program(self, name: str) -> Program:
        service = self.compose["services"][name]
        command = [str(part) for part in service["command"]]
        assert command[0] == "khaibao", command
        argv = [sys.executable, "-m", "libs.common.cli", *command[1:]]
        argv[argv.index("--host") + 1] = "127.0.0.1"
        argv[argv.index("--port") + 1] = str(self.service_ports[name])
        home = self.work / name
        data_dir, metrics_dir = home / "data", home / "metrics"
        for path in (data_dir, metrics_dir):
            path.mkdir(parents=True, exist_ok=True)
        env = base_environment()
        mounted = secrets_of(service)
        for key, value in {**dockerfile_env(), **_environment(service)}.items():
            if key == "PATH":
                continue
            env[key] = self._map_value(key, value, mounted, data_dir, metrics_dir)
        env["KHAIBAO_BUS_NAMESPACE"] = env.get("KHAIBAO_BUS_NAMESPACE") or self.namespace
        return Program(name, argv, env, data_dir, self.work / "logs" / f"{name}.log")

    def service_env(self, name: str) -> dict[str, str]:
        """The environment of a service's container, for one-off commands (``compose run``)."""
        if name not in self.programs:
            self.programs[name] = self.service_program(name)
        return self.programs[name].env

    # -- PostgreSQL --------------------------------------------------------------------------------
    def postgres_password(self) -> str:
        env = _environment(self.compose["services"]["postgres"])
        if "POSTGRES_PASSWORD_FILE" in env:
            name = env["POSTGRES_PASSWORD_FILE"].removeprefix(SECRETS_IN_CONTAINER)
            return self.secret_file(name).read_text().strip()
        return env["POSTGRES_PASSWORD"]

    async def prepare_postgres(self, admin_url: str) -> None:
        """What the postgres image does on an empty volume: the role's password, then the
        init scripts, run as that role."""
        import asyncpg

        user = _environment(self.compose["services"]["postgres"]).get("POSTGRES_USER", "postgres")
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'ALTER ROLE "{user}" PASSWORD $1'.replace("$1", _literal(self.postgres_password())))
        finally:
            await admin.close()
        connection = await asyncpg.connect(host="127.0.0.1", port=self.postgres_port, user=user,
                                           password=self.postgres_password(), database="postgres")
        try:
            for script in sorted(POSTGRES_INIT.glob("*.sql")):
                for statement in _statements(script.read_text()):
                    await connection.execute(statement)
        finally:
            await connection.close()

    # -- nginx -------------------------------------------------------------------------------------
    def nginx_conf(self) -> str:
        text = NGINX_CONF.read_text()
        text = re.sub(r"^\s*resolver(_timeout)?\s[^;]*;", "", text, flags=re.MULTILINE)
        text = re.sub(r"^pid\s[^;]*;", f"pid {self.work / 'nginx' / 'nginx.pid'};", text, flags=re.MULTILINE)
        text = re.sub(r"error_log\s[^;]*;", f"error_log {self.work / 'logs' / 'nginx-error.log'} warn;", text)
        text = re.sub(r"access_log\s+/dev/stdout", f"access_log {self.work / 'logs' / 'nginx-access.log'}", text)
        text = re.sub(r"^(\s*)listen\s+(\d+)\s*;",
                      lambda m: f"{m.group(1)}listen 127.0.0.1:{self.proxy_ports[int(m.group(2))]};",
                      text, flags=re.MULTILINE)
        upstreams = {f"{name}:{port}": f"127.0.0.1:{self.service_ports[name]}" for name, port in SERVICES.items()}
        upstreams[f"prometheus:{9090}"] = f"127.0.0.1:{self.prometheus_port}"

        def upstream(match: re.Match) -> str:
            return f"set $upstream {upstreams.get(match.group(1), CLOSED)};"

        text = re.sub(r"set \$upstream\s+([\w.-]+:\d+)\s*;", upstream, text)
        temp = self.work / "nginx" / "temp"
        paths = "".join(f"    {kind}_temp_path {temp / kind};\n"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return text.replace("http {\n", "http {\n" + paths, 1)

    def nginx_program(self) -> Program:
        home = self.work / "nginx"
        (home / "temp").mkdir(parents=True, exist_ok=True)
        conf = home / "nginx.conf"
        conf.write_text(self.nginx_conf())
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return Program("nginx", [nginx, "-c", str(conf), "-p", str(home), "-g", "daemon off;"], base_environment(),
                       home, self.work / "logs" / "nginx.log")

    # -- Prometheus --------------------------------------------------------------------------------
    def prometheus_config(self, scrape_interval: str = "2s") -> dict:
        config = _load_yaml(PROMETHEUS / "prometheus.yml")
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["scrape_timeout"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
        config.pop("alerting", None)  # nothing here receives alerts; the rules are what we test
        # The engines' exporters (job postgres, docker-compose.ha.yml) do not run here.
        config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] != "postgres"]
        for job in config["scrape_configs"]:
            statics = []
            for sd in job.pop("dns_sd_configs", []):
                for name in sd["names"]:
                    assert SERVICES[name] == sd["port"], (name, sd)
                    statics.append({"targets": [f"127.0.0.1:{self.service_ports[name]}"],
                                    "labels": {"__meta_dns_name": name}})
            for static in job.get("static_configs", []):
                static["targets"] = [f"127.0.0.1:{self.prometheus_port}" if t == "localhost:9090" else t
                                     for t in static["targets"]]
            if statics:
                job["static_configs"] = [*job.get("static_configs", []), *statics]
        return config

    def prometheus_program(self) -> Program:
        import yaml

        home = self.work / "prometheus"
        (home / "data").mkdir(parents=True, exist_ok=True)
        config = self.prometheus_config()
        for rule_file in config.get("rule_files", []):
            shutil.copy(PROMETHEUS / rule_file, home / rule_file)
        (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [shutil.which("prometheus") or "/usr/bin/prometheus", f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{self.prometheus_port}"]
        return Program("prometheus", argv, base_environment(), home, self.work / "logs" / "prometheus.log")

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    # -- running -----------------------------------------------------------------------------------
    def start_services(self) -> None:
        for name in SERVICES:
            program = self.programs.get(name) or self.service_program(name)
            self.programs[name] = program
            program.start()

    def start(self, program: Program) -> None:
        self.programs[program.name] = program
        program.start()

    async def wait_healthy(self, names: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for name in names:
                program = self.programs[name]
                url = f"http://127.0.0.1:{self.service_ports[name]}/healthz"
                while True:
                    if not program.running():
                        raise AssertionError(f"{name} exited with code {program.proc.returncode}:\n"
                                             f"{program.log_tail()}")
                    try:
                        if (await client.get(url)).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{name} not healthy within {timeout:.0f} s:\n{program.log_tail()}")
                    await asyncio.sleep(0.25)

    def stop(self) -> None:
        for program in reversed(list(self.programs.values())):
            program.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{program.log_tail(25)}" for name, program in self.programs.items())

    def log_text(self) -> str:
        return "\n".join(p.log_path.read_text(errors="replace") for p in self.programs.values()
                         if p.log_path.exists())


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)[:3000]
