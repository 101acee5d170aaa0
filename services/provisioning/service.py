"""Use cases of the provisioning service. The caller owns the transaction."""
from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import text as typed
from libs.common.adminunits import AdminTree
from libs.common.auth import Principal, Role
from libs.common.events.provisioning import VENUE_CODE_ALPHABET, VenueCreated, VenueCreatedData
from libs.common.outbox import publish

from . import access, password_policy
from .models import Account, RetiredCode, Unit, Venue
from .passwords import hasher

MIN_PASSWORD_LENGTH = password_policy.MIN_LENGTH
# One answer for an unknown user name, a wrong password and a throttled attempt (issue 16).
WRONG_CREDENTIALS = "Tên đăng nhập hoặc mật khẩu không đúng / Wrong username or password"
WRONG_CURRENT = "Mật khẩu hiện tại không đúng / Current password is wrong"


class SignInFailed(Exception):
    """``outcome`` for the record and the metrics: ``failure`` (wrong credentials, disabled),
    ``throttled``, or ``refused`` (a new password the policy refuses); ``reason``: a code for
    the sign-in history (never the password)."""

    def __init__(self, message: str, outcome: str = "failure", reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.outcome = outcome
        self.reason = reason


class WrongCurrentPassword(SignInFailed):
    """The current password given on /password is wrong: counted like a failed sign-in."""

    def __init__(self) -> None:
        super().__init__(WRONG_CURRENT, reason="wrong_current")


class PasswordHashing(Protocol):
    """The port change_password hashes through (hashing.HashPool: off the event loop)."""

    async def verify(self, password_hash: str | None, password: str) -> bool: ...

    async def hash(self, password: str) -> str: ...


def new_venue_code(length: int = 10) -> str:
    """10 characters of a 32-letter alphabet: 50 bits, not guessable by scanning codes."""
    return "".join(secrets.choice(VENUE_CODE_ALPHABET) for _ in range(length))


async def unused_venue_codes(session: AsyncSession, count: int) -> list[str]:
    """``count`` fresh codes, none in use nor ever retired."""
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {new_venue_code() for _ in range(count - len(codes))} - codes
        taken = set((await session.execute(select(Venue.code).where(Venue.code.in_(wanted)))).scalars())
        taken |= set((await session.execute(select(RetiredCode.code).where(RetiredCode.code.in_(wanted)))).scalars())
        codes |= wanted - taken
    return sorted(codes)


def principal_of(account: Account) -> Principal:
    return Principal(
        account_id=str(account.id), username=account.username, name=account.name, role=Role(account.role),
        jurisdiction=account.jurisdiction, unit_id=str(account.unit_id) if account.unit_id else None,
        must_change_password=account.must_change_password,
    )


async def account_named(session: AsyncSession, username: str) -> Account | None:
    """The account of a user name as typed (trimmed, any case); None for one the text policy
    refuses (a NUL: PostgreSQL cannot even compare it)."""
    if typed.refusal(username) is not None:
        return None
    return (await session.execute(
        select(Account).where(Account.username == username.strip().lower()))).scalar_one_or_none()


async def create_account(session: AsyncSession, *, username: str, name: str, role: Role, jurisdiction: str,
                         password: str, unit_id: UUID | None = None, must_change_password: bool = True) -> Account:
    account = Account(
        username=username.strip().lower(), name=name, role=str(role), jurisdiction=jurisdiction, unit_id=unit_id,
        password_hash=hasher.hash(password), must_change_password=must_change_password,
        created_at=datetime.now(UTC),
    )
    session.add(account)
    return account


async def change_password(session: AsyncSession, account_id: UUID, current: str, new: str, *,
                          hashing: PasswordHashing | None = None) -> None:
    """With ``hashing`` the argon2 work runs there (off the event loop); a wrong current
    password raises ``WrongCurrentPassword``."""
    account = await session.get(Account, account_id)
    if account is None:
        raise SignInFailed("Tài khoản không tồn tại / Unknown account")
    if hashing is not None:
        right = await hashing.verify(account.password_hash, current)
    else:
        try:
            right = hasher.verify(account.password_hash, current)
        except (VerificationError, InvalidHashError):
            right = False
    if not right:
        raise WrongCurrentPassword()
    if new == current:
        raise SignInFailed("Mật khẩu mới phải khác mật khẩu cũ / The new password must differ from the old one",
                           outcome="refused", reason="same_password")
    unit = await session.get(Unit, account.unit_id) if account.unit_id else None
    reason = password_policy.refusal(new, username=account.username,
                                     names=(account.name, unit.name if unit else ""))
    if reason is not None:
        raise SignInFailed(password_policy.message(reason), outcome="refused", reason=f"password_{reason}")
    account.password_hash = await hashing.hash(new) if hashing is not None else hasher.hash(new)
    account.must_change_password = False
    account.password_changed_at = datetime.now(UTC)


async def create_unit_with_venues(session: AsyncSession, tree: AdminTree, *, name: str, address: str,
                                  commune_path: str, venue_names: list[str],
                                  registration_id: UUID | None = None) -> tuple[Unit, list[Venue]]:
    """A participating unit and its venues (gates), each with an unguessable code."""
    if tree.get(commune_path) is None:
        raise ValueError(f"unknown commune {commune_path!r}")
    now = datetime.now(UTC)
    unit = Unit(name=name, address=address, commune_path=commune_path, registration_id=registration_id,
                created_at=now)
    session.add(unit)
    codes = await unused_venue_codes(session, len(venue_names))
    venues = [Venue(unit_id=unit.id, code=code, name=venue_name, address=address,
                    commune_path=commune_path, created_at=now) for code, venue_name in zip(codes, venue_names)]
    session.add_all(venues)
    await publish(session, *[
        VenueCreated(producer="provisioning", jurisdiction=commune_path, data=VenueCreatedData(
            venue_id=v.id, code=v.code, unit_id=unit.id, unit_name=unit.name, name=v.name,
            address=v.address, commune_path=commune_path))
        for v in venues
    ])
    return unit, venues


async def venues_visible_to(session: AsyncSession, principal: Principal, *, limit: int = 500) -> list[Venue]:
    """Venues of the caller's unit, or within the caller's jurisdiction (oldest first)."""
    query = (select(Venue).where(access.scope(principal, Venue.unit_id, Venue.commune_path))
             .order_by(Venue.created_at, Venue.name))
    return list((await session.execute(query.limit(limit))).scalars())
