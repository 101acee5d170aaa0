"""``khaibao accounts create``: the operator creates the first official's account with
provisioning's settings; the one-time password is the only line on stdout and must be
changed at the first sign-in."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from libs.common.cli import main
from libs.common.db import Database
from services.provisioning.models import Account, AuditEntry

from .conftest import build_settings, run_services

CREATE = ["accounts", "create", "--username", "So.TTTT", "--name", "Sở Thông tin và Truyền thông",
          "--role", "city_dic", "--jurisdiction", "79"]


@pytest.fixture
def provisioning_env(monkeypatch, keys):
    database_url = f"sqlite+aiosqlite:///{keys.data_dir / 'provisioning.db'}"
    monkeypatch.setenv("KHAIBAO_ENVIRONMENT", "test")
    monkeypatch.setenv("KHAIBAO_DATA_DIR", str(keys.data_dir))
    monkeypatch.setenv("KHAIBAO_PROVISIONING_DATABASE_URL", database_url)
    return database_url


def test_create_a_city_account_then_sign_in_must_change_the_password(provisioning_env, keys, capsys):
    assert main(CREATE) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1, "the password alone on stdout"
    password = lines[0]
    assert len(password) >= 20 and password not in captured.err
    assert "so.tttt" in captured.err

    async def sign_in():
        settings = build_settings("provisioning", keys, database_url=provisioning_env)
        async with run_services({"provisioning": settings}) as system:
            client = system.clients["provisioning"]
            wrong = await client.post("/api/token", json={"username": "so.tttt", "password": "not-it-0123"})
            assert wrong.status_code == 401
            answer = await client.post("/api/token", json={"username": "so.tttt", "password": password})
            assert answer.status_code == 200, answer.text
            assert answer.json()["must_change_password"] is True
            token = answer.json()["access_token"]
            me = await client.get("/api/me", headers={"authorization": f"Bearer {token}"})
            assert me.status_code == 403  # nothing but the password change until it is done
        database = Database(provisioning_env)
        try:
            async with database.transaction(readonly=True) as session:
                account = (await session.execute(select(Account).where(Account.username == "so.tttt"))).scalar_one()
                audit = (await session.execute(select(AuditEntry).where(
                    AuditEntry.action == "account_created"))).scalars().all()
        finally:
            await database.dispose()
        assert (account.role, account.jurisdiction, account.must_change_password) == ("city_dic", "79", True)
        assert password not in account.password_hash
        assert [a.target for a in audit] == ["so.tttt"]

    asyncio.run(sign_in())

    # The same username again: refused, nothing on stdout.
    assert main(CREATE) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "already exists" in captured.err


@pytest.mark.parametrize(("role", "jurisdiction", "message"), [
    ("city_dic", "79/760", "role city_dic needs"),
    ("district_focal", "79", "role district_focal needs"),
    ("commune_focal", "79/760/99999", "unknown jurisdiction"),
    ("unit_admin", "79/760/26734", "invalid choice"),
])
def test_the_jurisdiction_must_fit_the_role(provisioning_env, capsys, role, jurisdiction, message):
    args = ["accounts", "create", "--username", "someone", "--name", "Cán bộ", "--role", role,
            "--jurisdiction", jurisdiction]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse refuses a role that is not an official's
        code = exc.code
    captured = capsys.readouterr()
    assert code in (1, 2) and captured.out == ""
    assert message in captured.err


def test_production_settings_that_are_not_valid_create_nothing(provisioning_env, monkeypatch, keys, capsys):
    monkeypatch.setenv("KHAIBAO_ENVIRONMENT", "production")
    assert main(CREATE) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "KHAIBAO_AUTH_PUBLIC_KEY_FILE" in captured.err
    assert not (keys.data_dir / "provisioning.db").exists()
