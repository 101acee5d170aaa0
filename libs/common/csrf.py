"""Cross-site request forgery protection for every console form of every service.

A browser sends the session cookie with any request to our hosts, also one that another
site makes it send. So a state-changing request (POST, PUT, PATCH, DELETE) that is
authenticated by the session cookie must also carry a token that only our own pages know:

* ``CsrfMiddleware`` (pure ASGI, installed by ``create_service_app``) puts the session's
  token on ``request.state.csrf_token`` for the templates (``{{ ui.csrf_field(csrf_token) }}``
  and the sign-out form of the page header). For an unsafe request with the cookie it reads
  the token from the ``X-CSRF-Token`` header or from the form field ``csrf_token``
  (URL-encoded or multipart: the body is buffered and replayed to the route, so uploads
  still work), checks the Origin (or Referer) when the browser sends one, and records the
  verdict in the request state. It refuses nothing itself.
* ``current_principal`` (libs/common/auth.py) refuses with 403 a principal taken from the
  cookie on an unsafe request whose verdict is not good. So every route that authenticates
  by the cookie is protected, and a new one cannot be forgotten; public forms (no sign-in)
  and API clients sending ``Authorization: Bearer`` are not concerned.

The token is an HMAC of the session cookie with the shared secret key: the same in every
service (the header's sign-out form posts to provisioning), different for every sign-in,
never stored. The sign-in form itself (no session yet) is protected by its origin check
(``check_origin``) and by the SameSite cookie.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from starlette.requests import Request as StarletteRequest
from starlette.requests import cookie_parser

from .auth import SESSION_COOKIE, Forbidden

FIELD = "csrf_token"
HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Bodies beyond this are not buffered for the form field (send the header instead).
BUFFER_LIMIT = 16 * 1024 * 1024
# The first bytes of a streamed body searched for the token (our forms send it first).
PREFIX_LIMIT = 256 * 1024

TEXTS = {
    "vi": ("Trang đã hết hiệu lực",
           "Yêu cầu không được chấp nhận vì trang đã hết hiệu lực hoặc không được gửi từ hệ thống. "
           "Hãy mở lại trang rồi thực hiện lại thao tác; nếu vẫn lỗi, hãy đăng xuất và đăng nhập lại."),
    "en": ("The page has expired",
           "The request was refused: the page has expired or was not sent from this system. "
           "Open the page again and repeat the action; if it still fails, sign out and sign in again."),
}


class CsrfRejected(Forbidden):
    def __init__(self) -> None:
        super().__init__("Trang đã hết hiệu lực, hãy mở lại trang và thực hiện lại / "
                         "The page has expired; open it again and repeat the action")


def token_for(secret: str, session: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{session}".encode(), hashlib.sha256).hexdigest()[:32]


def origins_of(urls: Iterable[str]) -> frozenset[str]:
    found = set()
    for url in urls:
        parts = urlsplit(url or "")
        if parts.scheme and parts.netloc:
            found.add(f"{parts.scheme}://{parts.netloc}".lower())
    return frozenset(found)


def _header(scope, name: bytes) -> str | None:  # noqa: ANN001
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def origin_allowed(scope, trusted: frozenset[str]) -> bool:  # noqa: ANN001
    """True when the request names no origin, or names ours (its own host or a console's)."""
    origin = _header(scope, b"origin")
    if origin is None:
        referer = _header(scope, b"referer")
        if not referer:
            return True
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    origin = origin.strip().lower()
    if origin in trusted:
        return True
    host = (_header(scope, b"host") or "").lower()
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host


def check_origin(request: Request) -> None:
    """For forms without a session (sign-in): refuse a post that another site makes."""
    trusted = getattr(request.app.state, "csrf_trusted_origins", frozenset())
    if not origin_allowed(request.scope, trusted):
        raise CsrfRejected()


def ensure(request: Request) -> None:
    """For routes that act on the cookie without ``current_principal`` (sign-out)."""
    state = request.scope.get("state", {})
    if request.method not in SAFE_METHODS and request.cookies.get(SESSION_COOKIE) and not _bearer(request.scope):
        if state.get("csrf_verdict") is not True:
            raise CsrfRejected()


def verdict_for(request: Request) -> bool:
    return request.scope.get("state", {}).get("csrf_verdict") is True


def _bearer(scope) -> bool:  # noqa: ANN001
    value = _header(scope, b"authorization") or ""
    return value.lower().startswith("bearer ")


def _content_type(scope) -> str:  # noqa: ANN001
    return (_header(scope, b"content-type") or "").split(";")[0].strip().lower()


_PREFIX_PATTERNS = {
    # a complete first value: followed by the next field
    "application/x-www-form-urlencoded": re.compile(rb"(?:^|&)csrf_token=([0-9A-Za-z]{1,128})&"),
    # a complete part: its value is followed by the next boundary
    "multipart/form-data": re.compile(
        rb'name="csrf_token"\r\n(?:[^\r\n]+\r\n)*\r\n([0-9A-Za-z]{1,128})\r\n--'),
}


def _field_from_prefix(kind: str, prefix: bytes) -> str | None:
    found = _PREFIX_PATTERNS[kind].search(prefix)
    return found.group(1).decode("ascii") if found else None


async def _field_from_body(scope, body: bytes) -> str | None:  # noqa: ANN001
    kind = _content_type(scope)
    try:
        if kind == "application/x-www-form-urlencoded":
            for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=5000):
                if key == FIELD:
                    return value
            return None
        if kind == "multipart/form-data":
            sent = False

            async def replay() -> dict:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            form = await StarletteRequest(dict(scope, state={}), replay).form(max_files=1000, max_fields=5000)
            try:
                value = form.get(FIELD)
                return value if isinstance(value, str) else None
            finally:
                await form.close()
    except Exception:  # noqa: BLE001 - an unreadable body carries no token; the route answers it
        return None
    return None


class CsrfMiddleware:
    """See the module docstring. Adds nothing to requests without the session cookie."""

    def __init__(self, app, secret: str, trusted_origins: frozenset[str],  # noqa: ANN001
                 buffer_limit: int = BUFFER_LIMIT) -> None:
        self.app = app
        self.secret = secret
        self.trusted = trusted_origins
        self.buffer_limit = buffer_limit

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie_header = _header(scope, b"cookie")
        session = cookie_parser(cookie_header).get(SESSION_COOKIE) if cookie_header else None
        if not session:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        expected = token_for(self.secret, session)
        state["csrf_token"] = expected
        if scope["method"] in SAFE_METHODS or _bearer(scope):
            await self.app(scope, receive, send)
            return
        sent = _header(scope, HEADER)
        pending: list[dict] = []
        kind = _content_type(scope)
        if sent is None and kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
            # Our forms put the token first: read until it is seen (an upload of any size
            # then streams on to the route), else the whole body up to the limit.
            chunks, size, complete = [], 0, False
            while True:
                message = await receive()
                pending.append(message)
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if not message.get("more_body", False):
                    complete = True
                    break
                if size <= PREFIX_LIMIT:
                    sent = _field_from_prefix(kind, b"".join(chunks))
                    if sent is not None:
                        break
                if size > self.buffer_limit:
                    break
            if complete:
                body = b"".join(chunks)
                pending = [{"type": "http.request", "body": body, "more_body": False}]
                sent = await _field_from_body(scope, body) if size <= self.buffer_limit else None
        state["csrf_verdict"] = (origin_allowed(scope, self.trusted) and sent is not None
                                 and hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode()))

        async def replay_receive() -> dict:
            if pending:
                return pending.pop(0)
            return await receive()

        await self.app(scope, replay_receive, send)
