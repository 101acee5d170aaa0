"""Use cases of the interoperability clients (the caller owns the transaction).

A client's secret is 32 random bytes (URL-safe), shown once to the operator and kept only
as an argon2id hash, like a password. Verification runs in a worker thread (argon2 costs
~0.1 s of CPU); an unknown client id pays for a dummy hash of the same parameters, so the
answer time does not tell which client ids exist.
"""
from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, datetime

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role

from ..passwords import hasher
from .models import InteropClient

# What a client may be granted. ``fhir.read``: the FHIR export, declarations included (with
# a purpose on every call, services/reporting/fhir/purposes.py).
SCOPES = frozenset({"fhir.read"})
CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{2,79}$")
_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(32))


class ClientRefused(ValueError):
    """A client that cannot be created; the message says why (Vietnamese / English)."""


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def create_client(session: AsyncSession, *, client_id: str, name: str, jurisdiction: str,
                        scopes: list[str], created_by: str | None = None) -> tuple[InteropClient, str]:
    """A new client and its secret (in clear: for the caller to show once and forget)."""
    client_id = client_id.strip().lower()
    if not CLIENT_ID.match(client_id):
        raise ClientRefused(f"Mã client không hợp lệ / invalid client id {client_id!r}: 3 to 80 characters among "
                            "a-z, 0-9, '.', '_', '-'")
    unknown = sorted(set(scopes) - SCOPES)
    if not scopes or unknown:
        raise ClientRefused(f"Phạm vi không hợp lệ / invalid scopes {unknown or scopes}; known: {sorted(SCOPES)}")
    if (await session.execute(select(InteropClient.id).where(InteropClient.client_id == client_id))).first():
        raise ClientRefused(f"Mã client đã có / the client id {client_id!r} already exists")
    secret = new_secret()
    client = InteropClient(client_id=client_id, name=" ".join(name.split())[:200], jurisdiction=jurisdiction,
                           scopes=" ".join(sorted(set(scopes))), secret_hash=await asyncio.to_thread(hasher.hash, secret),
                           created_at=datetime.now(UTC), created_by=created_by)
    session.add(client)
    return client, secret


def _verify(secret_hash: str, secret: str) -> bool:
    try:
        return hasher.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


async def authenticate_client(session: AsyncSession, client_id: str, secret: str) -> InteropClient | None:
    """The enabled client whose secret this is, or None (unknown, wrong secret, disabled)."""
    client = (await session.execute(select(InteropClient).where(
        InteropClient.client_id == client_id.strip().lower()[:80]))).scalar_one_or_none()
    good = await asyncio.to_thread(_verify, client.secret_hash if client else _DUMMY_HASH, secret[:200])
    if client is None or not good or client.disabled:
        return None
    client.last_token_at = datetime.now(UTC)
    return client


def principal_of_client(client: InteropClient) -> Principal:
    return Principal(account_id=str(client.id), username=client.client_id, name=client.name,
                     role=Role.INTEROP_CLIENT, jurisdiction=client.jurisdiction)
