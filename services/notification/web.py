"""Small helpers of notification's pages: translated message codes, ids from URLs, local time."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode
from uuid import UUID

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse

from libs.common.ui.i18n import DEFAULT_LOCALE, normalize_locale

TEXTS = "notification/_texts.html"
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")  # no daylight saving time


def local_time(moment: datetime | None) -> str:
    """A stored instant (UTC; naive when read back from SQLite) as officials read a clock."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VIETNAM_TIME).strftime("%d/%m/%Y %H:%M")


def lang_of(request: Request) -> str:
    return normalize_locale(getattr(request.state, "lang", None)) or DEFAULT_LOCALE


def text(request: Request, code: str) -> str:
    module = request.app.state.templates.env_for(lang_of(request)).get_template(TEXTS).module
    return str(module.text(code))


def parse_id(value: str) -> UUID:
    try:
        return UUID(value)
    except (ValueError, TypeError):
        raise HTTPException(404) from None


def back(url: str, **params: str) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v})
    url, _, fragment = url.partition("#")
    if query:
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    return RedirectResponse(f"{url}#{fragment}" if fragment else url, status_code=303)


def flash(request: Request) -> list[tuple[str, str]]:
    out = []
    for level, key in (("success", "done"), ("error", "error")):
        code = request.query_params.get(key)
        if code and code.replace("_", "").isalnum() and len(code) < 40:
            message = text(request, code)
            if message:
                out.append((level, message))
    return out
