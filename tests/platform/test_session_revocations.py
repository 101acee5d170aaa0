"""Session revocations (libs/common/sessions.py) on SQLite and PostgreSQL: what one web
worker records, another refuses after its refresh; entries last until their tokens expire."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from libs.common.auth import Principal, Role, TokenSigner, TokenVerifier
from libs.common.db import Database
from libs.common.sessions import Revocation, SessionRevocations, metadata, record, revoked_sessions
from tests.services.conftest import make_keys


@pytest.fixture
async def database(backend):
    database = Database(await backend.database_url("sessions"))
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def signer_and_verifier(tmp_path):
    from libs.common.auth import load_private_key, load_public_key

    keys = make_keys(tmp_path / "data")
    signer = TokenSigner(load_private_key(keys.private), issuer="i", audience="a", ttl_seconds=600)
    return signer, TokenVerifier(load_public_key(keys.public), issuer="i", audience="a")


PRINCIPAL = Principal(account_id="00000000-0000-4000-9000-000000000001", username="ubnd.canthanh",
                      name="UBND", role=Role.COMMUNE_FOCAL, jurisdiction="79/787/27664")


async def _record(database: Database, *entries: Revocation) -> None:
    async with database.transaction() as session:
        for entry in entries:
            await record(session, entry)


async def test_another_worker_refuses_after_its_refresh(database, signer_and_verifier):
    signer, verifier = signer_and_verifier
    now = time.time()
    signed_out = verifier.verify(signer.sign(PRINCIPAL)).claims
    other = verifier.verify(signer.sign(PRINCIPAL)).claims
    assert signed_out["sid"] != other["sid"]
    recorder, reader = SessionRevocations(), SessionRevocations()
    database.commit_hooks.append(recorder.after_commit)
    await reader.refresh(database)
    await _record(database, Revocation(PRINCIPAL.account_id, signed_out["sid"], None, now + 600))
    assert recorder.revoked(signed_out)               # the recording worker: at once, after the commit
    assert not reader.revoked(signed_out)             # another worker: after its refresh
    await reader.refresh(database)
    assert reader.revoked(signed_out) and not reader.revoked(other)


async def test_account_not_before_spares_the_fresh_token(database, signer_and_verifier):
    signer, verifier = signer_and_verifier
    before = verifier.verify(signer.sign(PRINCIPAL)).claims
    cut = round(time.time() + 0.01, 3)
    fresh = verifier.verify(signer.sign(replace_claims(PRINCIPAL, before), now=cut)).claims
    assert fresh["sid"] == before["sid"]              # the same session, a fresh token
    await _record(database, Revocation(PRINCIPAL.account_id, None, cut, cut + 600),
                  Revocation(PRINCIPAL.account_id, None, cut - 100, cut + 10))   # an older one does not win
    reader = SessionRevocations()
    await reader.refresh(database)
    assert reader.accounts[PRINCIPAL.account_id] == (cut, cut + 600)
    assert reader.revoked(before) and not reader.revoked(fresh)
    later = verifier.verify(signer.sign(PRINCIPAL, now=cut + 1)).claims
    assert not reader.revoked(later)
    legacy = {"sub": PRINCIPAL.account_id, "iat": int(cut) - 1, "jti": "abc"}   # a token without sid nor ms
    assert reader.revoked(legacy)
    async with database.transaction(readonly=True) as session:
        assert (await session.execute(select(func.count()).select_from(revoked_sessions))).scalar_one() == 1


async def test_entries_expire_with_their_tokens(database):
    now = time.time()
    await _record(database, Revocation("a", "old-session", None, now - 1),
                  Revocation("a", "live-session", None, now + 600),
                  Revocation("b", None, now - 700, now - 1))
    reader = SessionRevocations()
    await reader.refresh(database, now=now)
    assert set(reader.sessions) == {"live-session"} and reader.accounts == {}
    # Incremental: only what was recorded since (with an overlap) is read again.
    await _record(database, Revocation("c", "new-session", None, now + 600))
    await reader.refresh(database, now=now + 1)
    assert set(reader.sessions) == {"live-session", "new-session"}
    # Once their tokens have expired, a full reload forgets them and the rows go.
    await reader.refresh(database, now=now + 700)
    assert reader.sessions == {} and reader.accounts == {}
    assert await reader.purge(database, now=now + 700) == 4


def replace_claims(principal: Principal, claims: dict) -> Principal:
    from dataclasses import replace

    return replace(principal, claims=claims)
