"""Small helpers of the HTTP edge: bounded bodies, form parsing, result links, local time.

CSRF of the gate console's forms: libs/common/csrf.py (checked before the route runs).
"""
from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import Request

from libs.common.ui import N_

LOCAL = timezone(timedelta(hours=7), "ICT")  # Ho Chi Minh City

TOO_LARGE = N_("The form is too large. Declare at most a few people at a time and keep the texts short.")
NOT_TEXT = N_("The form could not be read. Open the page again and send it once more.")
BAD_CSRF = N_("The page has expired. Open it again and repeat the action.")


class BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 beyond ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadBody(400, NOT_TEXT)
        if int(declared) > limit:
            raise BadBody(413, TOO_LARGE)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadBody(413, TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


class Form:
    """An ``application/x-www-form-urlencoded`` body: first value, all values (as typed:
    every value read is checked by the model or the check of its field)."""

    def __init__(self, body: bytes) -> None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadBody(400, NOT_TEXT) from None
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=2000)
        except ValueError:
            raise BadBody(413, TOO_LARGE) from None
        self.values: dict[str, list[str]] = {}
        for key, value in pairs:
            if "\x00" in key:
                raise BadBody(400, NOT_TEXT)
            # A value is kept as typed: the text policy (libs/common/text.py) of the field's
            # model refuses a NUL or any other control, naming the field (422).
            self.values.setdefault(key, []).append(value)

    def get(self, name: str, default: str = "") -> str:
        values = self.values.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self.values.get(name, ()))

    def __contains__(self, name: str) -> bool:
        return name in self.values


async def read_form(request: Request, limit: int) -> Form:
    return Form(await read_body(request, limit))


# --- result links ------------------------------------------------------------------------

RESULT_COOKIE = "khaibao_result"
RESULT_SECONDS = 30 * 60


def result_token(secret: str, submission_id: UUID | str, now: float | None = None) -> str:
    """The capability for a result page, valid ``RESULT_SECONDS``: ``<expiry>.<HMAC>``. It
    travels in an HttpOnly cookie scoped to that page's path, never in the URL, so the link
    alone (history, a shared screenshot, a proxy log) opens nothing."""
    expires = int((time.time() if now is None else now) + RESULT_SECONDS)
    return f"{expires}.{_result_mac(secret, submission_id, expires)}"


def _result_mac(secret: str, submission_id: UUID | str, expires: int) -> str:
    message = f"result:{submission_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def check_result_token(secret: str, submission_id: UUID | str, token: str | None, now: float | None = None) -> bool:
    expires, _, mac = (token or "").partition(".")
    if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_result_mac(secret, submission_id, int(expires)), mac)


# --- time --------------------------------------------------------------------------------

def local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(LOCAL)


def local_text(value: datetime | None) -> str:
    moment = local(value)
    return f"{moment:%H:%M %d/%m/%Y}" if moment else ""


def local_text_from_epoch(epoch: int | None) -> str:
    return local_text(datetime.fromtimestamp(epoch, UTC)) if epoch else ""


def today_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Midnight to midnight in Ho Chi Minh City, as UTC datetimes."""
    moment = local(now or datetime.now(UTC))
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
