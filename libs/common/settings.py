"""Settings: one pydantic-settings class per service, a shared base for what all share.

Every value comes from the environment (``KHAIBAO_*`` for shared values,
``KHAIBAO_<SERVICE>_*`` for a service's own). Placeholder secrets are refused outside
development so that a production deployment cannot start with a demo key.
"""
from __future__ import annotations

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


class CommonSettings(BaseSettings):
    """Values every service shares (prefix ``KHAIBAO_``)."""

    model_config = SettingsConfigDict(env_prefix="KHAIBAO_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    bus_url: str = "embedded://var/bus.db"
    secret_key: str = DEV_SECRET
    auth_public_key_file: Path | None = None
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
    kafka_partitions: int = 6
    kafka_replication_factor: int = 1
    demo: bool = False
    log_level: str = "INFO"
    # "json" (one object a line, for a log collector) or "text" (one readable line an
    # event). Unset (or "auto"): text when stderr is a terminal outside production, else
    # json (observability.log_format_for).
    log_format: Literal["json", "text"] | None = None

    @field_validator("log_format", mode="before")
    @classmethod
    def _automatic_log_format(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return None if value in ("", "auto") else value
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> "CommonSettings":
        if self.environment == "production":
            if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 32:
                raise ValueError(
                    "KHAIBAO_SECRET_KEY is a placeholder or shorter than 32 characters; "
                    "set a real secret for production"
                )
            if self.auth_public_key_file is None:
                raise ValueError("KHAIBAO_AUTH_PUBLIC_KEY_FILE is required in production")
            if self.demo:
                raise ValueError("KHAIBAO_DEMO must be off in production")
        return self


class ServiceSettings(CommonSettings):
    """A service's own values (prefix ``KHAIBAO_<SERVICE>_``) over the shared ones.

    A service subclasses it with ``model_config = service_config("<name>")`` and its
    ``service_name``.
    """

    service_name: str = "service"
    database_url: str = ""
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL"] = "FULL"
    relay_batch_size: int = 500
    relay_poll_interval: float = 0.2
    consumer_max_attempts: int = 5
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)  # events per poll, applied in one transaction
    consumer_retry_backoff: float = 0.2
    # At shutdown the background loops get this long to finish their unit of work before
    # they are cancelled (KHAIBAO_SHUTDOWN_GRACE_SECONDS).
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=600)

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


def service_config(service: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"KHAIBAO_{service.upper()}_", extra="ignore")
