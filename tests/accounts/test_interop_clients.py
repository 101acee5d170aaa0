"""``khaibao accounts create-client``: the operator issues an interoperability client; its
secret is the only line on stdout, kept as an argon2 hash; the client-credentials grant
gives a token of the role ``interop_client`` with its scope and jurisdiction."""
from __future__ import annotations

import asyncio

import jwt
from sqlalchemy import select

from libs.common.cli import main
from libs.common.db import Database
from services.provisioning.interop.models import InteropClient
from services.provisioning.models import AuditEntry

from .conftest import build_settings, run_services
from .test_bootstrap import provisioning_env  # noqa: F401 - the fixture

CREATE = ["accounts", "create-client", "--client-id", "ncovi-sync", "--name", "Đồng bộ NCOVI",
          "--jurisdiction", "79/787", "--scope", "fhir.read"]


def test_issue_a_client_then_exchange_its_secret_for_a_scoped_token(provisioning_env, keys, capsys):  # noqa: F811
    assert main(CREATE) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1, "the secret alone on stdout"
    secret = lines[0]
    assert len(secret) >= 40 and secret not in captured.err and "ncovi-sync" in captured.err

    async def exchange():
        settings = build_settings("provisioning", keys, database_url=provisioning_env)
        async with run_services({"provisioning": settings}) as system:
            client = system.clients["provisioning"]
            grant = {"grant_type": "client_credentials", "client_id": "ncovi-sync"}
            wrong = await client.post("/api/oauth/token", data={**grant, "client_secret": secret[:-1] + "x"})
            assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
            unknown = await client.post("/api/oauth/token", data={**grant, "client_id": "nobody", "client_secret": secret})
            assert unknown.status_code == 401 and unknown.json() == wrong.json()
            other = await client.post("/api/oauth/token", data={**grant, "grant_type": "password",
                                                                 "client_secret": secret})
            assert other.status_code == 400 and other.json()["error"] == "unsupported_grant_type"
            scoped = await client.post("/api/oauth/token", data={**grant, "client_secret": secret,
                                                                  "scope": "accounts.write"})
            assert scoped.status_code == 400 and scoped.json()["error"] == "invalid_scope"
            answer = await client.post("/api/oauth/token", data={**grant, "client_secret": secret})
            assert answer.status_code == 200, answer.text
            assert answer.headers["cache-control"] == "no-store"
            basic = await client.post("/api/oauth/token", data={"grant_type": "client_credentials"},
                                      auth=("ncovi-sync", secret))
            assert basic.status_code == 200, basic.text
            token = answer.json()["access_token"]
            claims = jwt.decode(token, options={"verify_signature": False})
            assert (claims["role"], claims["jur"], claims["scope"], claims["usr"]) == (
                "interop_client", "79/787", "fhir.read", "ncovi-sync")
            me = await client.get("/api/me", headers={"authorization": f"Bearer {token}"})
            assert me.status_code == 200 and me.json()["role"] == "interop_client"
            # an official's console is not for a machine
            batches = await client.get("/api/batches", headers={"authorization": f"Bearer {token}"})
            assert batches.status_code == 403
        database = Database(provisioning_env)
        try:
            async with database.transaction(readonly=True) as session:
                row = (await session.execute(select(InteropClient))).scalar_one()
                audit = (await session.execute(select(AuditEntry).where(
                    AuditEntry.action == "interop_client_created"))).scalars().all()
        finally:
            await database.dispose()
        assert secret not in row.secret_hash and row.secret_hash.startswith("$argon2id$")
        assert row.last_token_at is not None and [a.target for a in audit] == ["ncovi-sync"]

    asyncio.run(exchange())

    assert main(CREATE) == 1   # the same client id again
    captured = capsys.readouterr()
    assert captured.out == "" and "already exists" in captured.err

    async def token_status() -> int:
        settings = build_settings("provisioning", keys, database_url=provisioning_env)
        async with run_services({"provisioning": settings}) as system:
            response = await system.clients["provisioning"].post("/api/oauth/token", data={
                "grant_type": "client_credentials", "client_id": "ncovi-sync", "client_secret": secret})
            return response.status_code

    assert main(["accounts", "disable-client", "--client-id", "ncovi-sync"]) == 0
    assert asyncio.run(token_status()) == 401
    assert main(["accounts", "enable-client", "--client-id", "ncovi-sync"]) == 0
    assert asyncio.run(token_status()) == 200
    assert main(["accounts", "disable-client", "--client-id", "nobody"]) == 1
    assert "no client" in capsys.readouterr().err


def test_an_unknown_jurisdiction_or_scope_is_refused(provisioning_env, capsys):  # noqa: F811
    args = [*CREATE[:6], "--jurisdiction", "79/999", "--scope", "fhir.read"]
    assert main(args) == 1
    assert "unknown jurisdiction" in capsys.readouterr().err
    try:
        main([*CREATE[:6], "--jurisdiction", "79", "--scope", "accounts.write"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "invalid choice" in capsys.readouterr().err
