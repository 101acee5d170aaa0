"""``khaibao check-config SERVICE`` and the same checks of ``serve`` in production: every
problem on its own line naming the variable, never a secret, never a traceback.

The environments are built as docker-compose.yml builds them, from the files of
``khaibao keys init``. The complete environment is checked against the real PostgreSQL and
Kafka of KHAIBAO_TEST_POSTGRES_URL / KHAIBAO_TEST_KAFKA_BOOTSTRAP (skipped without them).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from libs.common.cli import main
from tests.infra.process import free_port

ROOT = Path(__file__).resolve().parents[2]

# The variables of each service in production, as docker-compose.yml sets them (secrets
# from `keys init` instead of /run/secrets), without database and bus.
SHARED = {
    "KHAIBAO_ENVIRONMENT": "production",
    "KHAIBAO_SECRET_KEY_FILE": "secret_key",
    "KHAIBAO_DATABASE_PASSWORD_FILE": "db_password",
    "KHAIBAO_AUTH_PUBLIC_KEY_FILE": "token_public.pem",
    "KHAIBAO_FIELD_KEYS_FILE": "field_keys",
    "KHAIBAO_INDEX_KEY_FILE": "index_key",
}
OWN = {
    "intake": {},
    "provisioning": {"KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE": "token_private.pem",
                     "KHAIBAO_PROVISIONING_CREDENTIALS_PUBLIC_KEY_FILE": "credentials_public.pem"},
    "declaration": {"KHAIBAO_DECLARATION_PASS_PRIVATE_KEY_FILE": "pass_private.pem",
                    "KHAIBAO_DECLARATION_SEALING_PUBLIC_KEY_FILE": "credentials_public.pem"},
    "notification": {"KHAIBAO_NOTIFICATION_CREDENTIALS_PRIVATE_KEY_FILE": "credentials_private.pem"},
    "reporting": {},
}
# (Without KHAIBAO_DATABASE_PASSWORD_FILE: optional for SQLite; PostgreSQL refusing the
# connection is checked below.)
KEY_VARIABLES = sorted({(s, v) for s in OWN for v in [*SHARED, *OWN[s]]
                        if v not in ("KHAIBAO_ENVIRONMENT", "KHAIBAO_DATABASE_PASSWORD_FILE")})


def closed_port() -> int:
    return free_port()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("KHAIBAO_") and not name.startswith("KHAIBAO_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("deploy") / "secrets"
    assert main(["keys", "init", str(directory)]) == 0
    return directory


def production_env(service: str, secrets: Path, tmp_path: Path) -> dict[str, str]:
    env = {k: (v if k == "KHAIBAO_ENVIRONMENT" else str(secrets / v)) for k, v in {**SHARED, **OWN[service]}.items()}
    env["KHAIBAO_DATA_DIR"] = str(tmp_path / "data")
    # A SQLite database and the embedded bus: nothing to connect to unless a test says so.
    env[f"KHAIBAO_{service.upper()}_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'db.sqlite'}"
    env["KHAIBAO_BUS_URL"] = f"embedded://{tmp_path / 'data' / 'bus.db'}"
    env["KHAIBAO_SMTP_HOST"], env["KHAIBAO_SMTP_PORT"] = "127.0.0.1", str(closed_port())
    return env


def check(monkeypatch, capsys, service: str, env: dict[str, str], *args: str) -> tuple[int, list[str], str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["check-config", service, "--timeout", "2", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


@pytest.mark.parametrize("service", sorted(OWN))
def test_a_complete_environment_is_ok(monkeypatch, capsys, secrets_dir, tmp_path, service):
    code, lines, err = check(monkeypatch, capsys, service, production_env(service, secrets_dir, tmp_path))
    assert (code, lines) == (0, ["ok"]), lines
    if service == "notification":
        assert "warning: KHAIBAO_SMTP_HOST" in err  # the closed SMTP port: a warning, not a problem


@pytest.mark.parametrize(("service", "variable"), KEY_VARIABLES)
def test_each_missing_variable_is_named(monkeypatch, capsys, secrets_dir, tmp_path, service, variable):
    env = production_env(service, secrets_dir, tmp_path)
    del env[variable]
    code, lines, _ = check(monkeypatch, capsys, service, env)
    assert code == 1
    named = variable if variable != "KHAIBAO_SECRET_KEY_FILE" else "KHAIBAO_SECRET_KEY"
    assert any(line.startswith(named + ":") for line in lines), lines


@pytest.mark.parametrize(("service", "variable"), [(s, v) for s, v in KEY_VARIABLES if v.endswith("_KEY_FILE")])
def test_each_missing_key_file_is_named(monkeypatch, capsys, secrets_dir, tmp_path, service, variable):
    env = production_env(service, secrets_dir, tmp_path)
    env[variable] = str(tmp_path / "nowhere" / "key.pem")
    code, lines, _ = check(monkeypatch, capsys, service, env, "--offline")
    assert code == 1
    assert lines == [f"{variable}: file not found: {tmp_path / 'nowhere' / 'key.pem'}"]


def test_all_problems_are_listed_at_once(monkeypatch, capsys, secrets_dir, tmp_path):
    env = production_env("declaration", secrets_dir, tmp_path)
    del env["KHAIBAO_DECLARATION_PASS_PRIVATE_KEY_FILE"]
    env["KHAIBAO_AUTH_PUBLIC_KEY_FILE"] = str(secrets_dir / "pass_private.pem")   # not a public key
    env["KHAIBAO_SECRET_KEY_FILE"] = str(tmp_path / "short")
    (tmp_path / "short").write_text("changeme\n")
    env["KHAIBAO_DEMO"] = "true"
    env["KHAIBAO_KAFKA_PARTITIONS"] = "many"
    env["KHAIBAO_DECLARATION_BENCH_ROUTES"] = "true"
    code, lines, _ = check(monkeypatch, capsys, "declaration", env, "--offline")
    assert code == 1
    for variable in ("KHAIBAO_DECLARATION_PASS_PRIVATE_KEY_FILE", "KHAIBAO_AUTH_PUBLIC_KEY_FILE",
                     "KHAIBAO_SECRET_KEY_FILE", "KHAIBAO_DEMO", "KHAIBAO_KAFKA_PARTITIONS",
                     "KHAIBAO_DECLARATION_BENCH_ROUTES"):
        assert any(line.startswith(variable + ":") for line in lines), (variable, lines)
    assert not any("changeme" in line for line in lines)


def test_unreadable_and_mismatched_keys(monkeypatch, capsys, secrets_dir, tmp_path):
    if os.geteuid() == 0:
        unreadable = None  # root reads everything: only the mismatch is checked
    else:
        unreadable = tmp_path / "locked.pem"
        unreadable.write_bytes((secrets_dir / "credentials_public.pem").read_bytes())
        unreadable.chmod(0)
    env = production_env("provisioning", secrets_dir, tmp_path)
    env["KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE"] = str(secrets_dir / "pass_private.pem")
    if unreadable:
        env["KHAIBAO_PROVISIONING_CREDENTIALS_PUBLIC_KEY_FILE"] = str(unreadable)
    code, lines, _ = check(monkeypatch, capsys, "provisioning", env, "--offline")
    assert code == 1
    assert any(line.startswith("KHAIBAO_AUTH_PUBLIC_KEY_FILE: does not match "
                               "KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE") for line in lines), lines
    if unreadable:
        assert any(line.startswith("KHAIBAO_PROVISIONING_CREDENTIALS_PUBLIC_KEY_FILE: cannot read")
                   for line in lines), lines


def test_a_database_that_does_not_answer_is_named(monkeypatch, capsys, secrets_dir, tmp_path):
    env = production_env("reporting", secrets_dir, tmp_path)
    env["KHAIBAO_REPORTING_DATABASE_URL"] = f"postgresql+asyncpg://khaibao@127.0.0.1:{closed_port()}/khaibao_reporting"
    code, lines, err = check(monkeypatch, capsys, "reporting", env)
    assert code == 1
    assert any(line.startswith("KHAIBAO_REPORTING_DATABASE_URL: cannot connect") for line in lines), lines
    password = (secrets_dir / "db_password").read_text().strip()
    assert password not in "\n".join(lines) + err


def test_a_kafka_that_does_not_answer_is_named(monkeypatch, capsys, secrets_dir, tmp_path):
    env = production_env("intake", secrets_dir, tmp_path)
    env["KHAIBAO_BUS_URL"] = f"kafka://127.0.0.1:{closed_port()}"
    code, lines, err = check(monkeypatch, capsys, "intake", env)
    assert code == 1
    assert any(line.startswith("KHAIBAO_BUS_URL: Kafka at 127.0.0.1:") for line in lines), lines
    assert "Traceback" not in err


def _engines() -> tuple[str, str]:
    postgres, kafka = os.environ.get("KHAIBAO_TEST_POSTGRES_URL"), os.environ.get("KHAIBAO_TEST_KAFKA_BOOTSTRAP")
    if not postgres or not kafka:
        message = "KHAIBAO_TEST_POSTGRES_URL and KHAIBAO_TEST_KAFKA_BOOTSTRAP are not set"
        if os.environ.get("KHAIBAO_REQUIRE_ENGINES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return postgres, kafka


@pytest.mark.parametrize("service", ["provisioning", "notification"])
def test_a_complete_production_environment_on_real_engines(monkeypatch, capsys, tmp_path, service):
    """keys init + the real PostgreSQL (password from a file, none in the URL) + Kafka: ok."""
    from sqlalchemy.engine import URL, make_url

    postgres, kafka = _engines()
    secrets = tmp_path / "secrets"
    assert main(["keys", "init", str(secrets)]) == 0
    url = make_url(postgres)
    # The server's password in the secret file, as the operator's db_password would be.
    (secrets / "db_password").write_text(f"{url.password}\n")
    env = production_env(service, secrets, tmp_path)
    without_password = URL.create("postgresql+asyncpg", username=url.username, host=url.host, port=url.port,
                                  database=url.database).render_as_string(hide_password=False)
    assert make_url(without_password).password is None
    env[f"KHAIBAO_{service.upper()}_DATABASE_URL"] = without_password
    env["KHAIBAO_BUS_URL"] = f"kafka://{kafka}"
    capsys.readouterr()
    code, lines, _ = check(monkeypatch, capsys, service, env)
    assert (code, lines) == (0, ["ok"])

    # The wrong password: named, and never printed.
    (secrets / "db_password").write_text("wrong-password-0123456789\n")
    code, lines, err = check(monkeypatch, capsys, service, env)
    assert code == 1
    assert any(line.startswith(f"KHAIBAO_{service.upper()}_DATABASE_URL: cannot connect") for line in lines)
    assert "wrong-password-0123456789" not in "\n".join(lines) + err


def test_serve_in_production_stops_with_the_lines_and_no_traceback(secrets_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHAIBAO_") or k.startswith("KHAIBAO_TEST_")}
    env.update(production_env("declaration", secrets_dir, tmp_path))
    del env["KHAIBAO_DECLARATION_PASS_PRIVATE_KEY_FILE"]
    env["KHAIBAO_AUTH_PUBLIC_KEY_FILE"] = str(tmp_path / "missing.pem")
    result = subprocess.run(
        [sys.executable, "-m", "libs.common.cli", "serve", "declaration", "--port", str(closed_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert any(line.startswith("KHAIBAO_DECLARATION_PASS_PRIVATE_KEY_FILE: required in production")
               for line in lines), result.stderr
    assert f"KHAIBAO_AUTH_PUBLIC_KEY_FILE: file not found: {tmp_path / 'missing.pem'}" in lines
    assert "Uvicorn running" not in result.stderr and "Started server" not in result.stderr


async def test_the_database_password_file_is_set_on_the_url_when_connecting(monkeypatch, tmp_path):
    """The service's engine connects with the file's password; the URL it logs hides it."""
    from sqlalchemy.engine import URL, make_url
    from services.reporting.settings import ReportingSettings

    from libs.common.db import Database

    postgres, _ = _engines()
    url = make_url(postgres)
    (tmp_path / "db_password").write_text(f"{url.password}\n")
    monkeypatch.setenv("KHAIBAO_REPORTING_DATABASE_URL", URL.create(
        "postgresql+asyncpg", username=url.username, host=url.host, port=url.port,
        database=url.database).render_as_string(hide_password=False))
    monkeypatch.setenv("KHAIBAO_REPORTING_DATABASE_PASSWORD_FILE", str(tmp_path / "db_password"))
    settings = ReportingSettings()
    assert settings.database_password() == url.password
    database = Database.for_settings(settings)
    try:
        await database.ping()
        assert database.engine.url.password == url.password
        assert ":***@" in str(database.engine.url) and ":***@" in repr(database.engine.sync_engine)
        assert make_url(database.url).password is None
    finally:
        await database.dispose()
