"""argon2 off the event loop: a bounded pool of threads for sign-in and password change.

A default-cost argon2id verification is CPU work of a fifth of a second: done on the event
loop it stops every other request of the worker for that long, so a few dozen parallel
sign-ins froze the whole service. argon2-cffi releases the GIL while it hashes, so threads
run it beside the event loop, at a lower scheduling priority than the loop's own thread
(``HASH_NICENESS``), so that a full pool slows sign-ins, not every page. The pool is bounded: ``threads`` run, at most ``queue`` wait,
and at most ``per_address`` come from one client address (one guesser cannot fill the pool
and lock the owner out of it). A request that finds no room is refused at once
(``HashingBusy``: 503 with Retry-After), before anything about the account is read, so
the refusal says nothing about the account.

Timing (issue 16, "same answer, same time"): a user name that names no account is verified
against a dummy hash of the default cost, like an established account. Freshly issued
accounts keep the lighter hash of their random initial password until they change it
(passwords.py), which verifies in a few milliseconds: their answer is padded to the
running median-like estimate of a default-cost verification (``pad``), so an unknown user,
a fresh account and an established account answer after the same time. Throttled attempts
verify nothing and are padded the same way. Padding is a sleep: it costs no CPU.

One pool per process (its threads serve the CPU of that process's worker); the admission
counters are the event loop's (touched only from it).
"""
from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from .passwords import hasher

# Verified against when the user name is unknown: the default cost, as real accounts' hashes.
DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))
DEFAULT_PARAMETERS = extract_parameters(DUMMY_HASH)
BUSY = ("Hệ thống đang bận, vui lòng thử lại sau giây lát / "
        "The system is busy, please try again in a moment")


class HashingBusy(Exception):
    """No room in the pool: answer 503 with ``Retry-After: retry_after``."""

    retry_after = 1

    def __init__(self) -> None:
        super().__init__(BUSY)
        self.message = BUSY


# Niceness of the hashing threads (Linux schedules threads one by one): when hashing fills the
# cores, the event loop's thread (niceness 0) still runs first, so /healthz and the pages
# answer at once while sign-ins queue.
HASH_NICENESS = 10


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: the pool still bounds the work
        pass


def _verify(password_hash: str, password: str) -> tuple[bool, float]:
    started = time.perf_counter()
    try:
        ok = hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        ok = False
    return ok, time.perf_counter() - started


def is_default_cost(password_hash: str) -> bool:
    try:
        return extract_parameters(password_hash) == DEFAULT_PARAMETERS
    except InvalidHashError:
        return False


class HashPool:
    def __init__(self, threads: int, queue: int, per_address: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2",
                                           initializer=_lower_priority)
        self.capacity = threads + queue
        self.per_address = per_address
        self.in_flight = 0
        self.by_address: Counter[str] = Counter()
        # Seconds of CPU a default-cost verification takes now (an exponential average of
        # the measured ones); None until one was measured.
        self.typical: float | None = None

    @contextmanager
    def admission(self, address: str) -> Iterator[None]:
        """A place for one sign-in's hashing, or ``HashingBusy`` at once."""
        if self.in_flight >= self.capacity or self.by_address[address] >= self.per_address:
            raise HashingBusy()
        self.in_flight += 1
        self.by_address[address] += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self.by_address[address] -= 1
            if not self.by_address[address]:
                del self.by_address[address]

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; None (no such account): the dummy hash, always False.
        A hash lighter than the default cost is padded to a default-cost verification's time."""
        loop = asyncio.get_running_loop()
        ok, seconds = await loop.run_in_executor(self.executor, _verify, password_hash or DUMMY_HASH, password)
        if password_hash is None or is_default_cost(password_hash):
            self.typical = seconds if self.typical is None else 0.8 * self.typical + 0.2 * seconds
        else:
            await self.pad(seconds)
        return ok and password_hash is not None

    async def calibrate(self) -> None:
        """Measure one default-cost verification (at start-up), so that padding has a figure."""
        if self.typical is None:
            _, seconds = await asyncio.get_running_loop().run_in_executor(self.executor, _verify, DUMMY_HASH, "")
            self.typical = seconds

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self.executor, hasher.hash, password)

    async def pad(self, spent: float = 0.0) -> None:
        """Sleep what a default-cost verification takes beyond ``spent`` seconds."""
        if self.typical is None:
            await self.calibrate()
        elif self.typical > spent:
            await asyncio.sleep(self.typical - spent)


_POOLS: dict[tuple[int, int, int], HashPool] = {}


def pool_for(settings) -> HashPool:  # noqa: ANN001 - a ProvisioningSettings
    """The process's pool for these settings (the same one for every app of the process)."""
    key = (settings.signin_hash_threads, settings.signin_hash_queue, settings.signin_hash_per_address)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = HashPool(*key)
    return pool
