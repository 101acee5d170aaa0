"""Fixtures of the cross-service tests: the five real apps, in-process, on real engines.

- ``keys``: a temporary data dir holding an Ed25519 key pair (``keys/token-*.pem``);
- ``make_settings(service, **overrides)``: settings of one service pointing at a temporary
  SQLite file of its own and at the one embedded bus file of the data dir;
- ``mint``: tokens for any role and jurisdiction, signed with the test private key;
- ``run_services(settings...)``: an async context manager that starts several service
  apps with their lifespans (migrations, bus, relay, consumers) and gives an
  ``httpx.AsyncClient`` per service (real HTTP through ASGI, no server socket);
- ``launch_up(...)``: ``khaibao up`` as a subprocess on free ports (test_up, browser tests;
  in ``up.py``, imported here).

Nothing is mocked: SQLite files, the embedded bus and Ed25519 signatures are the real ones.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from libs.common.auth import Principal, Role, TokenSigner, generate_key_pair, load_private_key
from libs.common.settings import SERVICES, ServiceSettings
from tests.services.signin import (  # noqa: F401 - console sign-in helpers, importable from here
    HTML, csrf_in, csrf_token, session_of, sign_in, signed_in,
)
from tests.services.up import (  # noqa: F401 - `khaibao up` helpers, importable from here as before
    UpProcess, alive, children_of, demo_token, free_port_block, khaibao_command, khaibao_up, launch_up, port_open,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_COMMUNE = "79/787/27664"        # Thị trấn Cần Thạnh, Huyện Cần Giờ
DEMO_DISTRICT = "79/787"             # Huyện Cần Giờ
OTHER_COMMUNE = "79/787/27667"       # Xã Bình Khánh, same district
OTHER_DISTRICT = "79/760"            # Quận 1
OTHER_DISTRICT_COMMUNE = "79/760/26740"  # Phường Bến Nghé, Quận 1
CITY = "79"

# Environment variables that belong to the test harness, not to the services.
_HARNESS_ENV = ("KHAIBAO_TEST_", "KHAIBAO_REQUIRE_ENGINES", "KHAIBAO_KAFKA_CLASSPATH")


def service_url(service: str) -> str:
    """The base URL a service answers on inside the tests (and in its service_urls)."""
    return f"http://{service}.test"


SERVICE_URLS = {s: service_url(s) for s in SERVICES}


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"services.{service}.settings")
    return next(obj for name, obj in vars(module).items()
                if name.endswith("Settings") and isinstance(obj, type) and issubclass(obj, ServiceSettings)
                and obj is not ServiceSettings and getattr(obj, "model_fields", {}).get("service_name")
                and obj.model_fields["service_name"].default == service)


def create_app(service: str, settings: ServiceSettings) -> FastAPI:
    return importlib.import_module(f"services.{service}.app").create_app(settings)


@pytest.fixture(autouse=True, scope="session")
def _clean_environment():
    """The services read KHAIBAO_* variables: none of the developer's may leak into a test
    (session-wide, so that module-scoped systems are built in a clean environment too)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("KHAIBAO_") and not name.startswith(_HARNESS_ENV):
                patch.delenv(name)
        yield


# --- keys and settings ------------------------------------------------------------------

@dataclass(frozen=True)
class TestKeys:
    data_dir: Path
    private: Path
    public: Path

    @property
    def field_keys(self) -> Path:
        """The field encryption keys (libs/common/fieldcrypt.py), as production is given them."""
        return self.data_dir / "keys" / "field_keys"

    @property
    def index_key(self) -> Path:
        return self.data_dir / "keys" / "index_key"


def make_keys(data_dir: Path) -> TestKeys:
    private, public = data_dir / "keys" / "token-private.pem", data_dir / "keys" / "token-public.pem"
    if not private.exists():
        generate_key_pair(private, public)
    keys = TestKeys(data_dir, private, public)
    for path in (keys.field_keys, keys.index_key):
        if not path.exists():
            path.write_text(secrets.token_hex(32) + "\n")
    return keys


def build_settings(service: str, keys: TestKeys, **overrides: Any) -> ServiceSettings:
    """Settings of ``service``: its own SQLite file, the shared embedded bus, the test keys."""
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": keys.data_dir,
        "database_url": f"sqlite+aiosqlite:///{keys.data_dir / (service + '.db')}",
        "bus_url": f"embedded://{keys.data_dir / 'bus.db'}",
        "auth_public_key_file": keys.public,
        "service_urls": dict(SERVICE_URLS),
        "public_base_url": "http://landing.test",
        "sqlite_synchronous": "NORMAL",
        "relay_poll_interval": 0.05,
        "demo": False,
    }
    if service == "provisioning":
        values["auth_private_key_file"] = keys.private
    if service == "intake":
        # Every test registers from one client address: the registration spam limits and
        # flags are off here and tested on their own (tests/intake/test_spam.py).
        values.update(registrations_per_address_hour=0, pending_per_tax_code=0, pending_per_email=0,
                      spam_burst_count=0, spam_venue_count=0, spam_same_name=False)
    if overrides.get("environment") == "production":
        values.update(field_keys_file=keys.field_keys, index_key_file=keys.index_key)
    values.update(overrides)
    return settings_class(service)(**values)


@pytest.fixture
def keys(tmp_path) -> TestKeys:
    """A fresh data dir with a key pair."""
    return make_keys(tmp_path / "data")


@pytest.fixture
def make_settings(keys) -> Callable[..., ServiceSettings]:
    def factory(service: str, **overrides: Any) -> ServiceSettings:
        return build_settings(service, keys, **overrides)

    return factory


@pytest.fixture
def all_settings(make_settings) -> dict[str, ServiceSettings]:
    """Settings for the five services (no demo data)."""
    return {s: make_settings(s) for s in SERVICES}


# --- tokens -----------------------------------------------------------------------------

@dataclass
class Minter:
    """Signs tokens like provisioning does, with whatever key and claims a test needs."""

    private_key_file: Path
    issuer: str = "khaibao-provisioning"
    audience: str = "khaibao"
    counter: int = 0

    def token(self, role: Role | str, jurisdiction: str = CITY, *, unit_id: str | None = None,
              must_change_password: bool = False, ttl_seconds: int | None = None, now: float | None = None,
              private_key_file: Path | None = None, username: str | None = None) -> str:
        self.counter += 1
        role = Role(role)
        if role in (Role.UNIT_ADMIN, Role.GATE_STAFF) and unit_id is None:
            unit_id = "00000000-0000-4000-8000-000000000001"
        principal = Principal(
            account_id=f"00000000-0000-4000-9000-{self.counter:012d}", username=username or f"test.{role}",
            name=f"Người kiểm thử {role}", role=role, jurisdiction=jurisdiction, unit_id=unit_id,
            must_change_password=must_change_password,
        )
        signer = TokenSigner(load_private_key(private_key_file or self.private_key_file), issuer=self.issuer,
                             audience=self.audience, ttl_seconds=ttl_seconds or 600)
        # An interoperability client's token carries its scope, as the client-credentials grant gives it.
        extra = {"scope": "fhir.read"} if role == Role.INTEROP_CLIENT else None
        return signer.sign(principal, now=now, extra=extra)

    def headers(self, role: Role | str, jurisdiction: str = CITY, **kwargs: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(role, jurisdiction, **kwargs)}"}


@pytest.fixture
def mint(keys) -> Minter:
    return Minter(keys.private)


# --- running services in-process -----------------------------------------------------

@dataclass
class RunningServices:
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    settings: dict[str, ServiceSettings]
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, service: str) -> httpx.AsyncClient:
        return self.clients[service]

    def runtime(self, service: str):  # noqa: ANN201 - libs.common.runtime.Runtime
        return self.apps[service].state.runtime


def client_for(app: FastAPI, base_url: str, **kwargs: Any) -> httpx.AsyncClient:
    # raise_app_exceptions=False: a crash must show up as the 500 the user would get.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs)


@contextlib.asynccontextmanager
async def run_services(settings: dict[str, ServiceSettings]) -> AsyncIterator[RunningServices]:
    """Start each service app with its lifespan; stop them all (in reverse) at the end."""
    apps = {s: create_app(s, cfg) for s, cfg in settings.items()}
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for service, app in apps.items():
            await stack.enter_async_context(app.router.lifespan_context(app))
            clients[service] = await stack.enter_async_context(client_for(app, service_url(service)))
        yield RunningServices(apps, clients, settings)


@contextlib.asynccontextmanager
async def demo_system(data_dir: Path) -> AsyncIterator[RunningServices]:
    """The five services on SQLite files and one embedded bus in ``data_dir``, provisioning
    with the demo accounts; in ``extra``: the token ``minter`` and the ``keys``."""
    keys = make_keys(data_dir)
    settings = {s: build_settings(s, keys, demo=s == "provisioning") for s in SERVICES}
    async with run_services(settings) as running:
        running.extra["minter"] = Minter(keys.private)
        running.extra["keys"] = keys
        yield running


@pytest.fixture
async def system(all_settings) -> AsyncIterator[RunningServices]:
    """The five services, empty, on SQLite files and one embedded bus."""
    async with run_services(all_settings) as running:
        yield running


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, interval: float = 0.05,
                     what: str = "condition") -> Any:
    """Poll ``check`` until it returns a truthy value, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout:.0f}s (last value: {last!r})")
        await asyncio.sleep(interval)


def registration(commune_code: str = "27664", unit_type: str = "school", name: str = "Trường Tiểu học Cần Thạnh",
                 **overrides: Any) -> dict[str, Any]:
    """A valid body for intake's POST /api/registrations."""
    body = {
        "unit_name": name, "unit_type": unit_type, "address": "12 Đường Lương Văn Nho",
        "commune_code": commune_code, "contact_name": "Nguyễn Văn An", "contact_position": "Hiệu trưởng",
        "contact_phone": "0909 123 456", "contact_email": "lienhe@example.vn", "venue_count": 2,
    }
    body.update(overrides)
    return body


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1, default=str)
