"""Settings: one pydantic-settings class per service, a shared base for what all share.

Every value comes from the environment (``KHAIBAO_*`` for shared values,
``KHAIBAO_<SERVICE>_*`` for a service's own). Placeholder secrets are refused outside
development so that a production deployment cannot start with a demo key.

Secrets may come from files (``KHAIBAO_SECRET_KEY_FILE``, ``KHAIBAO_DATABASE_PASSWORD_FILE``),
as Docker secrets are mounted, so that no secret is an environment value or part of a URL.

Each class lists what is wrong with its values in ``problems()`` (one line per problem,
``KHAIBAO_<VARIABLE>: message``); validation refuses the settings with all of them at once,
or, inside ``collecting_problems()`` (``khaibao check-config``), hands them over instead.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

SERVICES = ("intake", "provisioning", "declaration", "notification", "reporting")
DEFAULT_PORTS = {
    "landing": 8100,
    "intake": 8101,
    "provisioning": 8102,
    "declaration": 8103,
    "notification": 8104,
    "reporting": 8105,
}
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "development-only-secret", "dev"}
DEV_SECRET = "development-only-secret"

_COLLECTED: ContextVar[list[str] | None] = ContextVar("khaibao_settings_problems", default=None)


@contextmanager
def collecting_problems() -> Iterator[list[str]]:
    """Settings built inside the block do not refuse their problems: they add them to the list."""
    problems: list[str] = []
    token = _COLLECTED.set(problems)
    try:
        yield problems
    finally:
        _COLLECTED.reset(token)


def read_secret_file(path: Path) -> str:
    """The stripped content of a secret file (OSError / UnicodeDecodeError when unreadable)."""
    return Path(path).read_text(encoding="utf-8").strip()


class CommonSettings(BaseSettings):
    """Values every service shares (prefix ``KHAIBAO_``)."""

    model_config = SettingsConfigDict(env_prefix="KHAIBAO_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    bus_url: str = "embedded://var/bus.db"
    secret_key: str = DEV_SECRET
    # A file holding the secret key (a Docker secret); its content wins over KHAIBAO_SECRET_KEY.
    secret_key_file: Path | None = None
    auth_public_key_file: Path | None = None
    # Token public keys of before a rotation (`khaibao keys rotate token`): tokens they
    # signed still verify until they expire.
    auth_previous_public_key_files: list[Path] = Field(default_factory=list)
    auth_issuer: str = "khaibao-provisioning"
    auth_audience: str = "khaibao"
    public_base_url: str = "http://127.0.0.1:8100"
    # Where each service's pages live, as seen by a browser (for links between consoles).
    service_urls: dict[str, str] = Field(
        default_factory=lambda: {s: f"http://127.0.0.1:{DEFAULT_PORTS[s]}" for s in SERVICES}
    )
    admin_units_file: Path | None = None
    admin_units_root: str = "79"
    bus_namespace: str = ""
    # The longest time any service keeps personal data (the circular's 21 days). Each
    # service's own KHAIBAO_<SERVICE>_RETENTION_DAYS defaults to it and may not exceed it;
    # the bus keeps its messages exactly this long: the embedded bus prunes older ones
    # (bus/retention.py), Kafka topics get retention.ms = this many days (bus/kafka.py, and
    # docker-compose.yml's broker default is derived from the same variable).
    data_retention_days: int = Field(default=21, ge=1, le=3650)
    # How often a process prunes the embedded bus (Kafka deletes by itself).
    bus_retention_interval_seconds: float = Field(default=600.0, gt=0)
    kafka_partitions: int = 6
    # Replicas of each khaibao topic the services create, and the in-sync replicas a write
    # needs (the topic's min.insync.replicas; None: the broker's default). One broker: 1 and
    # None; three brokers (docker-compose.ha.yml): 3 and 2, so that a write acknowledged
    # (acks=all) is on two machines and one broker may die without refusing writes.
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int | None = Field(default=None, ge=1)
    demo: bool = False
    log_level: str = "INFO"
    # "json" (one object a line, for a log collector) or "text" (one readable line an
    # event). Unset (or "auto"): text when stderr is a terminal outside production, else
    # json (observability.log_format_for).
    log_format: Literal["json", "text"] | None = None
    # Proxies whose X-Forwarded-For names the client (addresses or CIDRs, comma-separated;
    # "*": any peer, only where nothing but the proxy reaches the service). Empty: the
    # peer is the client. `khaibao serve` hands it to uvicorn (FORWARDED_ALLOW_IPS when unset).
    trusted_proxies: str = ""
    # Per-address request limits, "R/s burst B" or "off" (libs/common/ratelimit.py; sizing
    # in README.md "Public edge"). Off under KHAIBAO_ENVIRONMENT=test unless set to true.
    rate_limit_enabled: bool | None = None
    rate_limit_general: str = "30/s burst 300"   # pages, assets, consoles: a generous cap
    rate_limit_submit: str = "1/s burst 30"      # public forms other than the declaration
    rate_limit_signin: str = "0.5/s burst 20"    # POST /signin, POST /api/token
    rate_limit_declare: str = "5/s burst 60"     # a declaration (API or form)
    # The table the workers of a service share (default <data_dir>/ratelimit/<service>.bin).
    rate_limit_file: Path | None = None
    # Personal fields encrypted at rest (libs/common/fieldcrypt.py): the encryption keys, one
    # a line, the current first (``khaibao keys rotate field``), and the blind index key.
    # Without them (development, tests) both are derived from the secret key; production
    # refuses to start without them.
    field_keys_file: Path | None = None
    index_key_file: Path | None = None
    # Benchmarks only (bench/declare.py measures the cost of the encryption): false stores
    # the personal fields in clear. Production refuses it.
    field_encryption: bool = True

    @field_validator("log_format", mode="before")
    @classmethod
    def _automatic_log_format(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return None if value in ("", "auto") else value
        return value

    @field_validator("rate_limit_general", "rate_limit_submit", "rate_limit_signin", "rate_limit_declare",
                     "rate_limit_venue", check_fields=False)
    @classmethod
    def _limit(cls, value: str) -> str:
        from .ratelimit import parse_limit

        parse_limit(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        import ipaddress

        parts = [p.strip() for p in value.split(",") if p.strip()]
        for part in parts:
            if part != "*":
                try:
                    ipaddress.ip_network(part, strict=False)
                except ValueError:
                    raise ValueError(f"{part!r} is not an address or a CIDR (or '*')") from None
        return ",".join(parts)

    def bus_retention_ms(self) -> int:
        """How long the bus keeps a message, in milliseconds (Kafka's retention.ms)."""
        return self.data_retention_days * 86_400_000

    def rate_limits_on(self) -> bool:
        return self.environment != "test" if self.rate_limit_enabled is None else self.rate_limit_enabled

    @model_validator(mode="after")
    def _refuse_problems(self) -> "CommonSettings":
        problems, unreadable = [], None
        if self.secret_key_file is not None:
            try:
                self.secret_key = read_secret_file(self.secret_key_file)
            except (OSError, UnicodeDecodeError) as exc:
                unreadable = self.env_name("secret_key_file")
                problems.append(
                    f"{unreadable}: file not found: {self.secret_key_file}" if isinstance(exc, FileNotFoundError)
                    else f"{unreadable}: cannot read {self.secret_key_file}: "
                         f"{getattr(exc, 'strerror', None) or type(exc).__name__}")
        # An unreadable secret file is the problem to fix, not the placeholder left in its place.
        problems += [p for p in self.problems() if not (unreadable and p.startswith(unreadable + ":"))]
        collected = _COLLECTED.get()
        if collected is not None:
            collected.extend(problems)
        elif problems:
            raise ValueError("\n".join(problems))
        return self

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of ``field``: the one set, else the shared name for a
        shared value and the service's own name for a service's value."""
        prefix = cls.model_config.get("env_prefix") or "KHAIBAO_"
        own, shared = f"{prefix}{field}".upper(), f"KHAIBAO_{field}".upper()
        for name in (own, shared):
            if name in os.environ:
                return name
        return shared if field in CommonSettings.model_fields else own

    def problems(self) -> list[str]:
        """What makes these values unfit (production refuses placeholders and demo data)."""
        problems = []
        if self.environment == "production":
            if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 32:
                name = self.env_name("secret_key_file" if self.secret_key_file else "secret_key")
                problems.append(f"{name}: the secret key is a placeholder or shorter than 32 characters; "
                                "set a real secret for production")
            if self.auth_public_key_file is None:
                problems.append(f"{self.env_name('auth_public_key_file')}: required in production "
                                "(the token public key)")
            if self.demo:
                problems.append(f"{self.env_name('demo')}: demo data must be off in production")
        return problems


class ServiceSettings(CommonSettings):
    """A service's own values (prefix ``KHAIBAO_<SERVICE>_``) over the shared ones.

    A service subclasses it with ``model_config = service_config("<name>")`` and its
    ``service_name``.
    """

    service_name: str = "service"
    database_url: str = ""
    # The database password in a file (a Docker secret), set on the URL when connecting:
    # the URL itself holds none (KHAIBAO_<SERVICE>_DATABASE_PASSWORD_FILE or the shared
    # KHAIBAO_DATABASE_PASSWORD_FILE).
    database_password_file: Path | None = None
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL"] = "FULL"
    relay_batch_size: int = 500
    relay_poll_interval: float = 0.2
    consumer_max_attempts: int = 5
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)  # events per poll, applied in one transaction
    consumer_retry_backoff: float = 0.2
    # At shutdown the background loops get this long to finish their unit of work before
    # they are cancelled (KHAIBAO_SHUTDOWN_GRACE_SECONDS).
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    # How often each web worker reads the session revocations recorded in its database
    # (libs/common/sessions.py; KHAIBAO_SESSION_REFRESH_SECONDS): the bound on how long an
    # ended session may still be accepted, on top of the bus's delivery.
    session_refresh_seconds: float = Field(default=1.0, gt=0, le=5)

    @model_validator(mode="before")
    @classmethod
    def _retention_defaults_to_the_shared_one(cls, data: object) -> object:
        """A service's ``retention_days``, when not set, is KHAIBAO_DATA_RETENTION_DAYS."""
        if (isinstance(data, dict) and "retention_days" in cls.model_fields and data.get("retention_days") is None
                and data.get("data_retention_days") is not None):
            data = {**data, "retention_days": data["data_retention_days"]}
        return data

    def field_ring(self):  # noqa: ANN201  (fieldcrypt.KeyRing; imported late: settings stay light)
        """This service's key ring for its encrypted columns."""
        from .fieldcrypt import derived_ring, ring_from_files

        if self.field_keys_file is not None and self.index_key_file is not None:
            ring = ring_from_files(self.field_keys_file, self.index_key_file)
        else:
            ring = derived_ring(self.secret_key, self.service_name)
        if not self.field_encryption:
            from .fieldcrypt import ClearRing
            return ClearRing(ring.keys, ring.index_key)
        return ring

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.environment == "production":
            if not self.field_encryption:
                problems.append(f"{self.env_name('field_encryption')}: personal fields are always encrypted in "
                                "production (the switch is for benchmarks)")
            for name in ("field_keys_file", "index_key_file"):
                if getattr(self, name) is None:
                    problems.append(f"{self.env_name(name)}: required in production (personal fields are "
                                    "encrypted at rest; `khaibao keys init` writes the file)")
        for name in ("field_keys_file", "index_key_file"):
            path = getattr(self, name)
            if path is not None:
                from .fieldcrypt import parse_field_keys
                try:
                    parse_field_keys(Path(path).read_text())
                except FileNotFoundError:
                    problems.append(f"{self.env_name(name)}: file not found: {path}")
                except (OSError, UnicodeDecodeError) as exc:
                    problems.append(f"{self.env_name(name)}: cannot read {path}: "
                                    f"{getattr(exc, 'strerror', None) or type(exc).__name__}")
                except ValueError as exc:
                    problems.append(f"{self.env_name(name)}: {path}: {exc}")
        own = getattr(self, "retention_days", None)
        if own is not None and own > self.data_retention_days:
            problems.append(f"{self.env_name('retention_days')}: {own:g} days is longer than "
                            f"{self.env_name('data_retention_days')} ({self.data_retention_days}), how long the "
                            "bus keeps messages: raise that one too, or shorten this one")
        return problems

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        # The service's own prefix wins; the shared KHAIBAO_ prefix fills the rest.
        shared_env = EnvSettingsSource(settings_cls, env_prefix="KHAIBAO_")
        return (init_settings, env_settings, shared_env, file_secret_settings)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / (self.service_name + '.db')}"

    def database_password(self) -> str | None:
        """The password of KHAIBAO_..._DATABASE_PASSWORD_FILE (None without one)."""
        if self.database_password_file is None:
            return None
        return read_secret_file(self.database_password_file)


def service_config(service: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"KHAIBAO_{service.upper()}_", extra="ignore")
