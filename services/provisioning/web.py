"""Small helpers of provisioning's pages: translated messages, ids from URLs, paging."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode
from uuid import UUID

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse

from libs.common.adminunits import AdminTree
from libs.common.ui.i18n import DEFAULT_LOCALE, normalize_locale

TEXTS = "provisioning/_texts.html"


def lang_of(request: Request) -> str:
    return normalize_locale(getattr(request.state, "lang", None)) or DEFAULT_LOCALE


def text(request: Request, code: str) -> str:
    """The translated message of ``code`` (the one list lives in templates/provisioning/_texts.html)."""
    templates = request.app.state.templates
    module = templates.env_for(lang_of(request)).get_template(TEXTS).module
    return str(module.text(code))


def parse_id(value: str) -> UUID:
    """A UUID from the URL, or the 404 page (never a 422 or a 500 for a mistyped link)."""
    try:
        return UUID(value)
    except (ValueError, TypeError):
        raise HTTPException(404) from None


def page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 100000))
    except ValueError:
        return 1


def pages(total: int, size: int) -> int:
    return max(1, (total + size - 1) // size)


def back(url: str, **params: str) -> RedirectResponse:
    """Post/redirect/get, with a message code (``done=...`` or ``error=...``) to show."""
    query = urlencode({k: v for k, v in params.items() if v})
    url, _, fragment = url.partition("#")
    if query:
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    return RedirectResponse(f"{url}#{fragment}" if fragment else url, status_code=303)


def district_of(tree: AdminTree, path: str) -> str:
    """The district (depth 1 node) above ``path``; the path itself when the tree is shallower."""
    chain = tree.ancestors(path)
    if len(chain) >= 2:
        return chain[1].path
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 else path


def flash(request: Request) -> list[tuple[str, str]]:
    """Messages announced by a redirect's query (codes only, translated here)."""
    out = []
    for level, key in (("success", "done"), ("error", "error")):
        code = request.query_params.get(key)
        if code and code.replace("_", "").isalnum() and len(code) < 40:
            message = text(request, code)
            if message:
                out.append((level, message))
    return out


VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")  # no daylight saving time


def local_time(moment: datetime | None) -> str:
    """A stored instant (UTC; naive when read back from SQLite) as Ho Chi Minh City reads a clock."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VIETNAM_TIME).strftime("%d/%m/%Y %H:%M")
