"""Request rate limits per client address (every service) and per venue (declarations).

Why in the services too: ``khaibao up`` and a deployment without the proxy have no nginx
in front (deploy/nginx/nginx.conf limits the same routes per address at the edge). A web
service runs as several uvicorn workers, separate processes: a limit kept in one worker's
memory would let a client through N times. So the state lives in a small file shared by
the workers of a service (``<data dir>/ratelimit/<service>.bin``, mmap'd), one fixed-size
table of slots keyed by a hash of the key (an address, a venue code); each slot holds one
number, the bucket's *theoretical arrival time* (GCRA: the token bucket written as one
time stamp). A check is one hash, one ``flock`` of the file around reading and writing 4
slots (a 64-byte line), and the arithmetic: a few microseconds (bench figures in
README.md, "Public edge: flood").

A limit is "R/s burst B": B requests at once, then R per second sustained. A slot whose
time stamp is in the past holds a full bucket, the same as no slot: such slots are reused
first; when the 4 slots of a line are all live the one closest to full is taken over
(the table holds 65,536 keys; a key evicted early only gets a fresh burst).

The client address is ``scope["client"]``: the peer, or the address uvicorn took from
``X-Forwarded-For`` when the peer is a trusted proxy (``KHAIBAO_TRUSTED_PROXIES``,
handed to uvicorn by ``khaibao serve``; nobody is trusted by default, so no client can
choose its own address). IPv6 clients are counted per /64 (one subscriber's network).

``RateLimitMiddleware`` (pure ASGI, installed by ``create_service_app``) applies the
per-address limits to every route but the probes (/healthz, /readyz, /metrics), by class:

* ``signin``: POST /signin, POST /api/token and POST /api/oauth/token (password guessing,
  and the argon2 hash each attempt costs);
* ``submit``: any other POST, PUT, PATCH or DELETE sent without credentials (the public
  forms: a unit's registration, the status lookup);
* ``general``: everything else: pages, static assets, the officials' consoles and APIs
  (a generous cap: a console is not slowed down, a scraper is);
* ``declare``: the declaration itself (POST /api/declarations in the service's fast
  path, services/declaration/fastpath.py, and the form POST /v/{code}).

A refused request gets 429 with ``Retry-After`` (whole seconds) and a message in
the caller's language: a problem (RFC 9457) for API clients, the error page for a
browser. Nothing behind the check runs: nothing is read, stored or sent. The answer is
held for ``HOLD_SECONDS`` first (at most ``MAX_HELD`` answers at once per worker, beyond
that at once): a client that sends its next request when the last one is answered (any
ordinary client, most flood tools) then gets one refusal per second per connection
instead of thousands, which would cost the legitimate visitors their CPU (bench/flood.py).
"""
from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import logging
import math
import mmap
import os
import random
import re
import struct
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from .problems import problem_response

from .ui import N_
from .ui.templates import wants_html

log = logging.getLogger(__name__)

SLOTS = 65_536          # keys held at once (16 bytes each: 1 MiB)
WAYS = 4                # slots looked at per key (one 64-byte line)
_LINE = struct.Struct("<" + "Qd" * WAYS)
_SLOT = struct.Struct("<Qd")
HOLD_SECONDS = 1.0
MAX_HELD = 1000
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
SIGNIN_PATHS = frozenset({"/signin", "/api/token", "/api/oauth/token"})
DECLARE_PATHS = re.compile(r"^/(api/declarations|v/[^/]+)$")
UNSAFE = frozenset({b"POST", b"PUT", b"PATCH", b"DELETE"})
_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*s\s+burst\s+(\d+)\s*$", re.I)

TOO_MANY = ("Bạn đã gửi quá nhiều yêu cầu trong thời gian ngắn, vui lòng thử lại sau {seconds} giây / "
            "Too many requests in a short time, please try again in {seconds} seconds")
PAGE_TITLE = N_("Too many requests")
PAGE_MESSAGE = N_("Too many requests were sent from your connection in a short time. Wait a moment, "
                  "then try again.")


@dataclass(frozen=True)
class Limit:
    """``rate`` requests per second sustained, ``burst`` at once."""

    rate: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    def __str__(self) -> str:
        return f"{self.rate:g}/s burst {self.burst}"


def parse_limit(text: str) -> Limit | None:
    """"5/s burst 60" -> Limit(5, 60); "off" -> None (ValueError otherwise)."""
    if text.strip().lower() in ("off", "none", ""):
        return None
    match = _LIMIT.match(text)
    if not match or float(match.group(1)) <= 0 or int(match.group(2)) < 1:
        raise ValueError(f"{text!r}: write a limit as 'R/s burst B' (R > 0, B >= 1), or 'off'")
    return Limit(float(match.group(1)), int(match.group(2)))


def _fingerprint(key: bytes) -> int:
    """A 64-bit hash, the same in every process (``hash()`` is salted per process); never 0."""
    return (zlib.crc32(key) << 32 | zlib.crc32(key, 0x9E3779B9)) or 1


class SharedBuckets:
    """GCRA buckets in a file that every worker of a service maps (see the module docstring).

    With ``path`` None the table is this process's memory only (tests, or a data directory
    that cannot be written).
    """

    def __init__(self, path: Path | None, slots: int = SLOTS) -> None:
        self.slots = slots - slots % WAYS
        size = self.slots * _SLOT.size
        self.fd: int | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(fd).st_size != size:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    if os.fstat(fd).st_size != size:
                        os.ftruncate(fd, size)  # new (or of another size): all slots empty
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            self.fd = fd
            self.map = mmap.mmap(fd, size)
        else:
            self.map = mmap.mmap(-1, size)
        self.path = path

    def take(self, key: bytes, limit: Limit, cost: float = 1.0, now: float | None = None) -> float:
        """Take ``cost`` from ``key``'s bucket: 0.0 if allowed, else the seconds to wait."""
        now = time.monotonic() if now is None else now
        fp = _fingerprint(key)
        offset = (fp % (self.slots // WAYS)) * WAYS * _SLOT.size
        interval = limit.interval
        tolerance = limit.burst * interval
        fd = self.fd
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            line = _LINE.unpack_from(self.map, offset)
            way, tat = -1, now
            oldest, oldest_tat = 0, math.inf
            for i in range(WAYS):
                owner, stamp = line[2 * i], line[2 * i + 1]
                if owner == fp:
                    way, tat = i, stamp
                    break
                if stamp < oldest_tat:
                    oldest, oldest_tat = i, stamp
            if way < 0:
                way, tat = oldest, now  # an empty or full-again slot first, else the closest to full
            elif tat < now or tat - now > tolerance + interval * cost:
                tat = now  # full again (or a stamp from before a reboot: monotonic time restarted)
            new_tat = tat + interval * cost
            wait = new_tat - now - tolerance
            if wait > 0:
                return wait
            _SLOT.pack_into(self.map, offset + way * _SLOT.size, fp, new_tat)
            return 0.0
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.map.close()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def client_address(scope: Mapping) -> str:
    """The client's address as this service knows it; an IPv6 address by its /64."""
    client = scope.get("client")
    host = client[0] if client else ""
    if ":" in host:
        try:
            return str(ipaddress.IPv6Network(f"{host}/64", strict=False).network_address) + "/64"
        except ValueError:
            return host
    return host


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


def too_many_json(wait: float, lang: str = "vi") -> bytes:
    """The 429 problem (RFC 9457) in ``lang``, as bytes (the declaration's hot door sends it raw)."""
    from .problems import problem_bytes

    return problem_bytes(429, lang, TOO_MANY.format(seconds=retry_after(wait)))


class AddressLimits:
    """The per-address limits of one service, by class, over one ``SharedBuckets``."""

    def __init__(self, buckets: SharedBuckets, limits: Mapping[str, Limit | None],
                 hold_seconds: float = HOLD_SECONDS) -> None:
        self.buckets = buckets
        self.limits = dict(limits)
        self.hold_seconds = hold_seconds
        self.held = 0
        self._keys: dict[tuple[str, str], bytes] = {}

    async def hold(self) -> None:
        """Wait before answering a refusal (see the module docstring), unless too many wait.

        The wait is drawn between half and one and a half ``hold_seconds``: refusals held
        for exactly one second would come back in step, and so would the client's next
        requests, a burst each second in which legitimate requests queue behind them
        (bench/flood.py); spread, they come one by one."""
        if self.held >= MAX_HELD or not self.hold_seconds:
            return
        self.held += 1
        try:
            await asyncio.sleep(self.hold_seconds * (0.5 + random.random()))
        finally:
            self.held -= 1

    def check(self, kind: str, scope: Mapping) -> float:
        limit = self.limits.get(kind)
        if limit is None:
            return 0.0
        address = client_address(scope)
        key = self._keys.get((kind, address))
        if key is None:
            if len(self._keys) > 100_000:
                self._keys.clear()
            key = self._keys[(kind, address)] = f"{kind}\0{address}".encode()
        return self.buckets.take(key, limit)


def classify(method: bytes, path: str, headers: list[tuple[bytes, bytes]]) -> str:
    if method in UNSAFE:
        if path in SIGNIN_PATHS:
            return "signin"
        if DECLARE_PATHS.match(path):
            return "declare"
        for name, value in headers:
            if name == b"authorization" or (name == b"cookie" and b"khaibao_session" in value):
                return "general"  # an official's console or API: the generous cap
        return "submit"
    return "general"


class RateLimitMiddleware:
    """Per-address limits on every route but the probes (see the module docstring)."""

    def __init__(self, app, limits: AddressLimits | None) -> None:  # noqa: ANN001
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if self.limits is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path in EXEMPT:
            await self.app(scope, receive, send)
            return
        kind = classify(scope["method"].encode(), path, scope["headers"])
        wait = self.limits.check(kind, scope)
        if not wait:
            await self.app(scope, receive, send)
            return
        log.warning("rate limit %s: 429 for %s %s", kind, scope["method"], path)
        await self.limits.hold()
        headers = {"Retry-After": retry_after(wait)}
        request = Request(scope, receive)
        if wants_html(request) and "app" in scope and hasattr(request.app.state, "templates"):
            response = request.app.state.templates.render_error(request, 429, title=PAGE_TITLE,
                                                                message=PAGE_MESSAGE, headers=headers)
        else:
            response = problem_response(request, 429, TOO_MANY.format(seconds=headers["Retry-After"]),
                                        headers=headers)
        await response(scope, receive, send)


def open_buckets(settings) -> SharedBuckets:  # noqa: ANN001 - a ServiceSettings
    """The service's shared table (its workers map the same file); memory only if the file
    cannot be made."""
    path = settings.rate_limit_file or Path(settings.data_dir) / "ratelimit" / f"{settings.service_name}.bin"
    try:
        return SharedBuckets(Path(path))
    except OSError as exc:
        log.warning("rate limits per worker only: cannot use %s (%s)", path, exc)
        return SharedBuckets(None)


def address_limits_for(settings) -> AddressLimits | None:  # noqa: ANN001 - a ServiceSettings
    if not settings.rate_limits_on():
        return None
    limits = {kind: parse_limit(getattr(settings, f"rate_limit_{kind}"))
              for kind in ("general", "submit", "signin", "declare")}
    return AddressLimits(open_buckets(settings), limits)
