"""Production refuses what is only fit for a laptop; development starts on defaults.

Production must have a real secret (not a placeholder, at least 32 characters), the token
key files (the public key for every service, the private key for provisioning) and no
demo data. Settings are read from the environment as the deployed services read them.
"""
from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from libs.common import sealed
from libs.common.settings import DEFAULT_PORTS, DEV_SECRET, PLACEHOLDER_SECRETS, SERVICES

from .conftest import build_settings, create_app, settings_class

REAL_SECRET = secrets.token_urlsafe(48)


@pytest.fixture
def production(monkeypatch, keys):
    """A complete, valid production environment; each test spoils one thing."""
    monkeypatch.setenv("KHAIBAO_ENVIRONMENT", "production")
    monkeypatch.setenv("KHAIBAO_SECRET_KEY", REAL_SECRET)
    monkeypatch.setenv("KHAIBAO_AUTH_PUBLIC_KEY_FILE", str(keys.public))
    monkeypatch.setenv("KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE", str(keys.private))
    # The declaration service signs personal passes with an Ed25519 key of its own.
    monkeypatch.setenv("KHAIBAO_DECLARATION_PASS_PRIVATE_KEY_FILE", str(keys.private))
    monkeypatch.setenv("KHAIBAO_DATA_DIR", str(keys.data_dir))
    # Declaration seals the personal details of its events to notification's public key.
    sealing_private, sealing_public = sealed.default_paths(keys.data_dir)
    sealed.ensure_key_pair(sealing_private, sealing_public)
    monkeypatch.setenv("KHAIBAO_DECLARATION_SEALING_PUBLIC_KEY_FILE", str(sealing_public))
    # Personal fields are encrypted at rest with these (libs/common/fieldcrypt.py).
    monkeypatch.setenv("KHAIBAO_FIELD_KEYS_FILE", str(keys.field_keys))
    monkeypatch.setenv("KHAIBAO_INDEX_KEY_FILE", str(keys.index_key))
    return monkeypatch


@pytest.mark.parametrize("service", SERVICES)
def test_production_accepts_a_complete_environment(production, keys, service):
    settings = settings_class(service)()
    assert settings.environment == "production"
    assert settings.secret_key == REAL_SECRET
    assert settings.auth_public_key_file == keys.public
    assert settings.demo is False


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("secret", sorted(PLACEHOLDER_SECRETS | {DEV_SECRET, "CHANGEME", " changeme "}))
def test_production_refuses_placeholder_secrets(production, service, secret):
    production.setenv("KHAIBAO_SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="KHAIBAO_SECRET_KEY"):
        settings_class(service)()


@pytest.mark.parametrize("service", SERVICES)
def test_production_refuses_the_default_secret(production, service):
    production.delenv("KHAIBAO_SECRET_KEY")
    with pytest.raises(ValidationError, match="KHAIBAO_SECRET_KEY"):
        settings_class(service)()


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("length", [1, 16, 31])
def test_production_refuses_a_short_secret(production, service, length):
    production.setenv("KHAIBAO_SECRET_KEY", secrets.token_hex(32)[:length])
    with pytest.raises(ValidationError, match="32 characters"):
        settings_class(service)()


def test_a_secret_of_32_characters_is_enough(production):
    production.setenv("KHAIBAO_SECRET_KEY", secrets.token_hex(16))
    assert len(settings_class("intake")().secret_key) == 32


@pytest.mark.parametrize("service", SERVICES)
def test_production_refuses_a_missing_public_key(production, service):
    production.delenv("KHAIBAO_AUTH_PUBLIC_KEY_FILE")
    with pytest.raises(ValidationError, match="KHAIBAO_AUTH_PUBLIC_KEY_FILE"):
        settings_class(service)()


def test_production_refuses_a_missing_private_key_for_provisioning(production):
    production.delenv("KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE")
    with pytest.raises(ValidationError, match="KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE"):
        settings_class("provisioning")()
    # The other services never hold the private key.
    for service in SERVICES:
        if service != "provisioning":
            assert not hasattr(settings_class(service)(), "auth_private_key_file")


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("flag", ["true", "1", "yes", "on"])
def test_production_refuses_demo_mode(production, service, flag):
    production.setenv("KHAIBAO_DEMO", flag)
    with pytest.raises(ValidationError, match="KHAIBAO_DEMO"):
        settings_class(service)()


def test_production_refuses_demo_mode_given_in_code(keys):
    with pytest.raises(ValidationError, match="KHAIBAO_DEMO"):
        build_settings("provisioning", keys, environment="production", secret_key=REAL_SECRET, demo=True)


def test_the_service_prefix_wins_over_the_shared_one(production):
    production.setenv("KHAIBAO_PROVISIONING_DEMO", "true")
    # The refusal names the variable that was set.
    with pytest.raises(ValidationError, match="KHAIBAO_PROVISIONING_DEMO"):
        settings_class("provisioning")()
    assert settings_class("intake")().demo is False


@pytest.mark.parametrize("service", SERVICES)
async def test_production_refuses_to_start_when_a_key_file_is_absent(production, keys, service, tmp_path):
    """Configured, but not there: the service must not start (and then reject everyone)."""
    production.setenv("KHAIBAO_AUTH_PUBLIC_KEY_FILE", str(tmp_path / "nowhere" / "public.pem"))
    production.setenv("KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE", str(tmp_path / "nowhere" / "private.pem"))
    production.setenv(f"KHAIBAO_{service.upper()}_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    production.setenv("KHAIBAO_BUS_URL", f"embedded://{tmp_path / 'bus.db'}")
    settings = settings_class(service)()
    app = create_app(service, settings)
    with pytest.raises(Exception, match="key"):
        async with app.router.lifespan_context(app):
            pass
    assert not (tmp_path / "nowhere").exists(), "production must never generate a key pair"


@pytest.mark.parametrize("service", SERVICES)
async def test_production_starts_with_its_keys(production, keys, service, tmp_path):
    production.setenv(f"KHAIBAO_{service.upper()}_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    production.setenv("KHAIBAO_BUS_URL", f"embedded://{tmp_path / 'bus.db'}")
    app = create_app(service, settings_class(service)())
    async with app.router.lifespan_context(app):
        import httpx

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x.test") as client:
            response = await client.get("/healthz")
            assert response.status_code == 200
            assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("service", SERVICES)
def test_development_accepts_the_defaults(service):
    settings = settings_class(service)()
    assert settings.environment == "development"
    assert settings.service_name == service
    assert settings.secret_key == DEV_SECRET
    assert settings.demo is False
    assert settings.auth_public_key_file is None
    assert settings.bus_url.startswith("embedded://")
    assert settings.resolved_database_url().startswith("sqlite+aiosqlite:///")
    assert settings.resolved_database_url().endswith(f"{service}.db")
    assert settings.service_urls[service] == f"http://127.0.0.1:{DEFAULT_PORTS[service]}"


@pytest.mark.parametrize("service", SERVICES)
def test_development_accepts_placeholders_and_demo(monkeypatch, service):
    monkeypatch.setenv("KHAIBAO_SECRET_KEY", "changeme")
    monkeypatch.setenv("KHAIBAO_DEMO", "true")
    settings = settings_class(service)()
    assert settings.demo is True and settings.secret_key == "changeme"


def test_test_environment_is_not_production(keys):
    settings = build_settings("provisioning", keys, secret_key="dev", demo=True)
    assert settings.environment == "test" and settings.demo is True
