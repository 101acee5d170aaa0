"""Sign-in throttling that slows guessers down without locking owners out (issue 16, item 1).

The lock-out it replaces refused an account's correct password for 15 minutes after five
failures from anywhere: five requests every quarter of an hour kept an official out. Here
failures slow down the places they come from:

- the pair (user name, client address): after ``signin_pair_free_failures`` failures each
  further one blocks the pair for ``signin_pair_delay_seconds``, doubling per failure up to
  ``signin_max_delay_seconds``;
- the client address alone (one guesser trying many user names): the same with
  ``signin_address_*``, except for a user name that signed in from that address in the
  last ``TRUSTED_DAYS`` days (an office behind one NAT: colleagues' typos, or a guesser
  among them, do not slow down its officials; their own pair still counts);
- the user name, whatever the address: at most ``signin_account_failures_per_hour``
  failures an hour, after which only addresses that have failed on this user name are
  refused: the owner, from an address with no failures, always has the password checked.

A failure's count restarts after a day without failures (the pair and the address) or an
hour (the user name); a success clears its pair. Wrong current passwords on /password count
exactly like failed sign-ins. While throttled, an attempt is not verified at all and gets
the answer of a wrong password, after the time a verification takes (hashing.HashPool.pad):
no oracle, and no "locked" message. It is counted for the owner's list of failed attempts,
but does not lengthen the delay (the guesser cannot keep it growing for free).

Why a table and not libs/common/ratelimit's shared mmap: that table is per machine (the
workers of one service on one host share its file) and may evict keys under pressure; the
throttle must hold across every replica of provisioning and through restarts, and evicting
a pair would hand a guesser a fresh start. Failures are rare writes (one upsert per key on
a failed attempt), reads are one indexed select of three keys: the database carries that.

Everything is keyed by the *user name as typed* (trimmed, lower-cased), not by the account:
an unknown user name is throttled exactly like a real one, so the throttle reveals nothing
about which accounts exist. Keys are HMACs (the service secret) of what they count: neither
user names (people type passwords into that field) nor addresses are stored in clear.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import SignInFailure, SignInThrottle

DAY = 86_400.0
HOUR = 3_600.0
SHOWN_DAYS = 30          # the owner's list covers this many days
TRUSTED_DAYS = 30        # a pair that signed in is exempt from its address's count this long
KEPT_DAYS = 90           # older rows of that list are deleted


@dataclass(frozen=True)
class Policy:
    pair_free: int
    pair_delay: float
    address_free: int
    address_delay: float
    max_delay: float
    account_per_hour: int

    @classmethod
    def of(cls, settings) -> Policy:  # noqa: ANN001 - a ProvisioningSettings
        return cls(settings.signin_pair_free_failures, settings.signin_pair_delay_seconds,
                   settings.signin_address_free_failures, settings.signin_address_delay_seconds,
                   settings.signin_max_delay_seconds, settings.signin_account_failures_per_hour)

    def delay(self, failures: int, free: int, base: float) -> float:
        """Seconds blocked after the ``failures``-th failure."""
        if failures <= free:
            return 0.0
        return min(self.max_delay, base * 2.0 ** min(failures - free - 1, 30))


@dataclass(frozen=True)
class Keys:
    pair: str
    address: str
    name: str


def keys_for(secret: str, username: str, address: str) -> Keys:
    name = username.strip().lower()

    def mac(*parts: str) -> str:
        return hmac.new(secret.encode(), "\0".join(parts).encode("utf-8", "replace"), hashlib.sha256).hexdigest()

    return Keys(pair=mac("pair", name, address), address=mac("address", address), name=mac("name", name))


def mask(address: str) -> str:
    """What the owner is shown of an address: an IPv4 address without its last byte,
    an IPv6 network as counted (/64, ratelimit.client_address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] if "/" in address else "?"
    if ip.version == 4:
        return ".".join(str(ip).split(".")[:3]) + ".x"
    return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))


async def throttled(session: AsyncSession, policy: Policy, keys: Keys, now: float) -> bool:
    """Whether an attempt with these keys is refused without being verified."""
    rows = {row.key: row for row in (await session.execute(
        select(SignInThrottle).where(SignInThrottle.key.in_([keys.pair, keys.address, keys.name])))).scalars()}
    pair, address, name = rows.get(keys.pair), rows.get(keys.address), rows.get(keys.name)
    if pair is not None and now < pair.last_failure_at + policy.delay(pair.failures, policy.pair_free,
                                                                        policy.pair_delay):
        return True
    trusted = pair is not None and (pair.trusted_until or 0.0) > now
    if not trusted and address is not None and now < address.last_failure_at + policy.delay(
            address.failures, policy.address_free, policy.address_delay):
        return True
    # The hourly cap of the user name: only for an address that failed on it itself.
    return (name is not None and pair is not None and pair.failures > 0 and now - pair.last_failure_at < DAY
            and now - name.first_failure_at < HOUR and name.failures >= policy.account_per_hour)


def _insert(session: AsyncSession):  # noqa: ANN202
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(SignInThrottle)


async def record_failure(session: AsyncSession, keys: Keys, now: float) -> None:
    """One more failure for each key (one upsert each: concurrent workers add up)."""
    table = SignInThrottle.__table__
    for key, window in ((keys.pair, DAY), (keys.address, DAY), (keys.name, HOUR)):
        # A count restarts once its window has passed since the failure that started it
        # (the user name: a fixed hour) or since the last one (the pair, the address).
        since = table.c.first_failure_at if window == HOUR else table.c.last_failure_at
        stale = since < now - window
        statement = _insert(session).values(key=key, failures=1, first_failure_at=now, last_failure_at=now)
        await session.execute(statement.on_conflict_do_update(index_elements=["key"], set_={
            "failures": case((stale, 1), else_=table.c.failures + 1),
            "first_failure_at": case((stale, now), else_=table.c.first_failure_at),
            "last_failure_at": now,
        }))
    if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
        await session.execute(delete(SignInThrottle).where(
            SignInThrottle.last_failure_at < now - 2 * DAY,
            (SignInThrottle.trusted_until.is_(None)) | (SignInThrottle.trusted_until < now)))


async def forgive(session: AsyncSession, keys: Keys, now: float) -> None:
    """A success clears its pair's failures and trusts the pair for ``TRUSTED_DAYS`` (the
    address and the user name keep their counts)."""
    trusted = now + TRUSTED_DAYS * DAY
    statement = _insert(session).values(key=keys.pair, failures=0, first_failure_at=now, last_failure_at=now,
                                        trusted_until=trusted)
    await session.execute(statement.on_conflict_do_update(index_elements=["key"], set_={
        "failures": 0, "first_failure_at": now, "last_failure_at": now, "trusted_until": trusted}))


async def note_for_owner(session: AsyncSession, account_id: UUID, address: str, now: datetime) -> None:
    """Count a failed attempt on the owner's list (per day and masked address)."""
    table = SignInFailure.__table__
    row = {"account_id": account_id, "day": now.strftime("%Y-%m-%d"), "address": mask(address),
           "attempts": 1, "last_at": now}
    insert = (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(SignInFailure)
    await session.execute(insert.values(**row).on_conflict_do_update(
        index_elements=["account_id", "day", "address"],
        set_={"attempts": table.c.attempts + 1, "last_at": now}))
    if random.random() < 0.01:  # noqa: S311
        cutoff = (now - timedelta(days=KEPT_DAYS)).strftime("%Y-%m-%d")
        await session.execute(delete(SignInFailure).where(SignInFailure.day < cutoff))


@dataclass(frozen=True)
class RecentFailures:
    address: str
    attempts: int
    last_at: datetime


async def recent_failures(session: AsyncSession, account_id: UUID, now: datetime | None = None,
                          limit: int = 20) -> list[RecentFailures]:
    """The owner's own failed attempts of the last ``SHOWN_DAYS`` days, by masked address,
    the latest first."""
    now = now or datetime.now(UTC)
    since = (now - timedelta(days=SHOWN_DAYS)).strftime("%Y-%m-%d")
    rows = (await session.execute(select(SignInFailure).where(
        SignInFailure.account_id == account_id, SignInFailure.day >= since))).scalars()
    by_address: dict[str, RecentFailures] = {}
    for row in rows:
        last_at = row.last_at if row.last_at.tzinfo else row.last_at.replace(tzinfo=UTC)
        seen = by_address.get(row.address)
        if seen is None:
            by_address[row.address] = RecentFailures(row.address, row.attempts, last_at)
        else:
            by_address[row.address] = RecentFailures(row.address, seen.attempts + row.attempts,
                                                     max(seen.last_at, last_at))
    return sorted(by_address.values(), key=lambda r: r.last_at, reverse=True)[:limit]
