"""The token signer of provisioning, from its private key (generated in development), and
sign-in: the single entry point for the console and the API."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, TokenSigner, generate_key_pair, load_private_key
from libs.common.runtime import Runtime, default_key_paths

from . import signins
from .signins import throttle
from .signins.hashing import HashingBusy, HashPool, is_default_cost, pool_for
from .models import Account
from .service import WRONG_CREDENTIALS, SignInFailed, WrongCurrentPassword, account_named, change_password, principal_of

# Sign-ins (API and console) by outcome: success, failure (wrong credentials, disabled
# account), throttled (refused unverified, signins/throttle.py) or busy (no room to hash: 503).
# Never labelled by user name. Counted by signins.record with the row and the log line
# (busy: the metric only, no row: a full pool is when the database must not be written more).
SIGNINS = signins.SIGNINS
T = TypeVar("T")


def signer_for(runtime: Runtime) -> TokenSigner:
    signer = runtime.extras.get("signer")
    if signer is None:
        settings = runtime.settings
        private, public = default_key_paths(settings)
        private = settings.auth_private_key_file or private
        if not private.exists():
            if settings.environment == "production":
                raise RuntimeError("the token private key file is missing")
            generate_key_pair(private, settings.auth_public_key_file or public)
        signer = TokenSigner(load_private_key(private), issuer=settings.auth_issuer,
                             audience=settings.auth_audience, ttl_seconds=settings.token_ttl_seconds)
        runtime.extras["signer"] = signer
    return signer


def hash_pool(runtime: Runtime) -> HashPool:
    return pool_for(runtime.settings)


async def _refuse_unverified(runtime: Runtime, pool: HashPool, account_id: UUID | None, address: str,
                             username: str, event: str = "signin") -> None:
    """A throttled attempt: on the record and on the owner's list, then the rest of the time
    a verification takes (known or unknown user name: the same time)."""
    started = time.perf_counter()
    async with runtime.database.transaction() as session:
        if account_id is not None:
            await throttle.note_for_owner(session, account_id, address, datetime.now(UTC))
        await signins.record(session, event=event, outcome="throttled", username=username, address=address)
    await pool.pad(time.perf_counter() - started)


class _Checked:
    """change_password's hashing port once the argon2 work is done, before the write
    transaction (on SQLite that transaction holds the database's write lock)."""

    def __init__(self, password_hash: str, new_hash: str) -> None:
        self.password_hash, self.new_hash = password_hash, new_hash

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return password_hash == self.password_hash  # unchanged since it was verified

    async def hash(self, password: str) -> str:
        return self.new_hash


async def _failed(runtime: Runtime, keys: throttle.Keys, account_id: UUID | None, address: str, username: str,
                  event: str = "signin", detail: str | None = None) -> None:
    async with runtime.database.transaction() as session:
        await throttle.record_failure(session, keys, time.time())
        if account_id is not None:
            await throttle.note_for_owner(session, account_id, address, datetime.now(UTC))
        await signins.record(session, event=event, outcome="failure", username=username, address=address,
                             detail=detail)


async def sign_in(runtime: Runtime, username: str, password: str, *, address: str = "") -> Principal:
    """The principal for these credentials, from the client ``address`` (ratelimit.client_address).

    Raises ``SignInFailed`` (one message for an unknown user name, a wrong password and a
    throttled attempt, after the same time) or ``HashingBusy`` (no room to hash: 503).
    The argon2 work runs in the bounded pool (signins/hashing.py), never on the event loop, and no
    database transaction is held while it runs.
    """
    settings = runtime.settings
    pool = hash_pool(runtime)
    policy = throttle.Policy.of(settings)
    keys = throttle.keys_for(settings.secret_key, username, address)
    try:
        with pool.admission(address):
            async with runtime.database.transaction(readonly=True) as session:
                blocked = await throttle.throttled(session, policy, keys, time.time())
                account = await account_named(session, username)
                found = (account.id, account.password_hash, account.disabled) if account is not None else None
            if not blocked:
                right = await pool.verify(found[1] if found else None, password)
    except HashingBusy:
        SIGNINS.labels("provisioning", "busy").inc()
        raise
    account_id = found[0] if found else None
    if blocked:
        await _refuse_unverified(runtime, pool, account_id, address, username)
        raise SignInFailed(WRONG_CREDENTIALS, outcome="throttled")
    if not right:
        await _failed(runtime, keys, account_id, address, username)
        raise SignInFailed(WRONG_CREDENTIALS)
    if found[2]:
        # Said only to whoever knows the password: no oracle for a guesser.
        await signins.record(runtime, outcome="failure", username=username, address=address)
        raise SignInFailed("Tài khoản đã bị vô hiệu hóa / Account disabled")
    # The initial password's lighter hash (or an older cost) is replaced by the default one.
    rehashed = None if is_default_cost(found[1]) else await pool.hash(password)
    async with runtime.database.transaction() as session:
        account = await session.get(Account, account_id)
        account.last_signin_at = datetime.now(UTC)
        if rehashed is not None and account.password_hash == found[1]:
            account.password_hash = rehashed
        await throttle.forgive(session, keys, time.time())
        await signins.record(session, outcome="success", account=account, address=address)
        principal = principal_of(account)
    return principal


async def change_own_password(runtime: Runtime, principal: Principal, current: str, new: str, *,
                              address: str = "",
                              then: Callable[[AsyncSession], Awaitable[T]] | None = None) -> T | None:
    """POST /password: the current password is checked under the sign-in throttle (a wrong
    one counts as a failed sign-in and is on the record; while throttled it is not checked
    and answers as wrong). ``then`` runs in the transaction that stores the new password
    (the other sessions end, the change goes on the record); its result is returned.
    Raises ``SignInFailed`` (``WrongCurrentPassword`` or a refused new password) or ``HashingBusy``."""
    result = None
    pool = hash_pool(runtime)
    keys = throttle.keys_for(runtime.settings.secret_key, principal.username, address)
    account_id = UUID(principal.account_id)
    with pool.admission(address):
        async with runtime.database.transaction(readonly=True) as session:
            blocked = await throttle.throttled(session, throttle.Policy.of(runtime.settings), keys, time.time())
            account = await session.get(Account, account_id)
            password_hash = account.password_hash if account is not None else None
        wrong = not blocked and not await pool.verify(password_hash, current)
        if not blocked and not wrong:
            checked = _Checked(password_hash, await pool.hash(new))
            try:
                async with runtime.database.transaction() as session:
                    await change_password(session, account_id, current, new, hashing=checked)
                    if then is not None:
                        result = await then(session)
            except WrongCurrentPassword:  # changed meanwhile (a reset)
                wrong = True
    if blocked:
        await _refuse_unverified(runtime, pool, account_id, address, principal.username, event="password_change")
        raise WrongCurrentPassword()
    if wrong:
        await _failed(runtime, keys, account_id, address, principal.username, event="password_change",
                      detail="wrong_current")
        raise WrongCurrentPassword()
    return result
