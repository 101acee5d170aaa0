"""Passwords: argon2id hashes, random initial passwords, and their sealing for delivery.

Two argon2id cost settings:

- Passwords a person chooses get argon2-cffi's default (RFC 9106 "low memory" profile:
  t=3, 64 MiB, p=4). Human passwords are guessable, so the hash must be expensive.
- Initial passwords are 20 characters drawn uniformly from a 31-letter alphabet:
  99 bits from ``secrets``. Guessing one from its hash takes ~2^98 argon2 evaluations
  on average whatever the cost parameters, so the cost buys nothing there while it
  dominates issuing 10,000 accounts. They get a lighter but still memory-hard argon2id
  (default t=1, 12 MiB, p=1; settings ``initial_password_time_cost`` and
  ``initial_password_memory_kib``). They live only until the first sign-in: the
  password must then be changed (default cost), and the sign-in itself already
  rehashes with the default cost.

The clear initial password exists only inside ``make_credentials``: generated, hashed,
sealed for the notification service, and dropped. That function runs in worker processes
(a process pool for a batch), so the password never even crosses a process boundary;
only its hash and the sealed box come back. Nothing here logs.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from uuid import UUID

from argon2 import PasswordHasher, Type

from libs.common import sealed
from libs.common.events.provisioning import credentials_context

# No 0/O, 1/I/L: the password may be read out over the phone or copied from paper.
PASSWORD_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
GROUPS, GROUP_LENGTH = 4, 5
hasher = PasswordHasher()  # for chosen passwords and verification


def initial_hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID)


def new_password() -> str:
    """``k7m2p-9qxzr-...``: 4 groups of 5 letters, 99 bits (31^20 > 2^99)."""
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GROUP_LENGTH))
                    for _ in range(GROUPS))


@dataclass(frozen=True)
class IssuedCredentials:
    password_hash: str
    key_id: str
    sealed: str


def make_credentials(accounts: list[tuple[str, str]], time_cost: int, memory_kib: int,
                     recipient_public: bytes | None) -> list[IssuedCredentials | tuple[str, str]]:
    """For each ``(account_id, credentials_id)``: a new random password, hashed and sealed.

    With ``recipient_public`` None (gate staff, shown once on screen) the result is
    ``(password_hash, password)`` for the caller to show and forget instead.
    """
    hasher_ = initial_hasher(time_cost, memory_kib)
    out: list = []
    for account_id, credentials_id in accounts:
        password = new_password()
        digest = hasher_.hash(password)
        if recipient_public is None:
            out.append((digest, password))
        else:
            box = sealed.seal(recipient_public, password.encode(), credentials_context(account_id, credentials_id))
            out.append(IssuedCredentials(digest, sealed.key_id(recipient_public), box))
        del password
    return out


def chunks(items: list, parts: int) -> list[list]:
    """``items`` in at most ``parts`` slices of near-equal size, order kept."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return [c for c in out if c]


def as_uuid(value: str | UUID) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
