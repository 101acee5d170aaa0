"""Ending sessions: provisioning records a revocation and publishes it in one transaction.

Every other service applies ``provisioning.session.revoked`` from the bus; provisioning
records it in its own ``revoked_sessions`` in the same transaction, so that it refuses
the ended tokens at once (libs/common/sessions.py). Call one of these wherever a session
must end: sign-out, an account disabled, a password changed or reset, and any future
change of an account's role or jurisdiction.
"""
from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import sessions
from libs.common.events.provisioning import SessionRevoked, SessionRevokedData
from libs.common.outbox import publish

# Tokens are accepted this long after their expiry (TokenVerifier's leeway): revocations
# outlive them by as much.
LEEWAY_SECONDS = 10


async def _revoke(session: AsyncSession, jurisdiction: str, data: SessionRevokedData) -> None:
    await sessions.record(session, data)
    await publish(session, SessionRevoked(producer="provisioning", jurisdiction=jurisdiction, data=data))


async def end_session(session: AsyncSession, claims: dict, *, reason: str = "signed_out") -> None:
    """End the one session a verified token belongs to (its ``sid``, or its ``jti``)."""
    session_id = claims.get("sid") or claims.get("jti")
    if not session_id or not claims.get("sub"):
        return
    await _revoke(session, str(claims.get("jur", "")), SessionRevokedData(
        account_id=str(claims["sub"]), session_id=str(session_id),
        until=float(claims.get("exp", time.time())) + LEEWAY_SECONDS, reason=reason))


async def end_account_sessions(session: AsyncSession, *, account_id: object, jurisdiction: str, reason: str,
                               token_ttl: int, now: float | None = None) -> float:
    """End every session of the account issued until now; returns the time ``T`` from which
    tokens are accepted again (a fresh token for the session that made the change is
    signed with ``now=T``)."""
    not_before = round(now if now is not None else time.time(), 3)
    await _revoke(session, jurisdiction, SessionRevokedData(
        account_id=str(account_id), not_before=not_before, until=not_before + token_ttl + LEEWAY_SECONDS,
        reason=reason))
    return not_before
