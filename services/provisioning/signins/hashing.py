"""argon2 off the event loop: a bounded pool of threads for sign-in and password change.

A default-cost argon2id verification is CPU work of a fifth of a second: done on the event
loop it stops every other request of the worker for that long, so a few dozen parallel
sign-ins froze the whole service. argon2-cffi releases the GIL while it hashes, so threads
run it beside the event loop (optionally at a lower scheduling priority than the loop's own
thread: setting ``signin_hash_niceness``). The pool is bounded: ``threads`` run, at most ``queue`` wait,
and at most ``per_address`` come from one client address (one guesser cannot fill the pool
and lock the owner out of it). A request that finds no room is refused at once
(``HashingBusy``: 503 with Retry-After), before anything about the account is read, so
the refusal says nothing about the account.

Timing (issue 16, "same answer, same time"): a user name that names no account is verified
against a dummy hash of the default cost, like an established account. Freshly issued
accounts keep the lighter hash of their random initial password until they change it
(passwords.py), which verifies in a few milliseconds: their answer is padded to the
median of the last few default-cost verifications (``pad``), so an unknown user,
a fresh account and an established account answer after the same time. Throttled attempts
verify nothing and are padded the same way. Padding is a sleep: it costs no CPU.

One pool per process (its threads serve the CPU of that process's worker); the admission
counters are the event loop's (touched only from it).
"""
from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from ..passwords import hasher

# Verified against when the user name is unknown: the default cost, as real accounts' hashes.
DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))
DEFAULT_PARAMETERS = extract_parameters(DUMMY_HASH)
RECENT = 5  # default-cost verifications whose median pads the lighter ones
BUSY = ("Hệ thống đang bận, vui lòng thử lại sau giây lát / "
        "The system is busy, please try again in a moment")


class HashingBusy(Exception):
    """No room in the pool: answer 503 with ``Retry-After: retry_after``."""

    retry_after = 1

    def __init__(self) -> None:
        super().__init__(BUSY)
        self.message = BUSY


def _lower_priority(niceness: int) -> None:
    """Linux schedules threads one by one: a hashing thread niced above the event loop's
    (0) lets the loop run first when hashing fills the cores."""
    if not niceness:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
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
    def __init__(self, threads: int, queue: int, per_address: int, niceness: int = 0) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2",
                                           initializer=_lower_priority, initargs=(niceness,))
        self.capacity = threads + queue
        self.per_address = per_address
        self.in_flight = 0
        self.by_address: Counter[str] = Counter()
        # The last measured default-cost verifications (seconds in the thread): their
        # median is what one takes now (it follows the machine's load within a few).
        self.recent: deque[float] = deque(maxlen=RECENT)

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
            self.recent.append(seconds)
        else:
            await self.pad(seconds)
        return ok and password_hash is not None

    @property
    def typical(self) -> float | None:
        """What a default-cost verification takes now: the median of the recent ones."""
        return statistics.median(self.recent) if self.recent else None

    async def calibrate(self) -> None:
        """Measure one default-cost verification (at start-up), so that padding has a figure."""
        if not self.recent:
            _, seconds = await asyncio.get_running_loop().run_in_executor(self.executor, _verify, DUMMY_HASH, "")
            self.recent.append(seconds)

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self.executor, hasher.hash, password)

    async def pad(self, spent: float = 0.0) -> None:
        """Sleep what a default-cost verification takes beyond ``spent`` seconds."""
        typical = self.typical
        if typical is None:
            await self.calibrate()
        elif typical > spent:
            await asyncio.sleep(typical - spent)


_POOLS: dict[tuple[int, int, int, int], HashPool] = {}


def pool_for(settings) -> HashPool:  # noqa: ANN001 - a ProvisioningSettings
    """The process's pool for these settings (the same one for every app of the process)."""
    key = (settings.signin_hash_threads, settings.signin_hash_queue, settings.signin_hash_per_address,
           settings.signin_hash_niceness)
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = HashPool(*key)
    return pool
