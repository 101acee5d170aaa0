"""Gettext catalogues and locale negotiation for the HTML pages.

The catalogues are ``.po`` files read at run time with Babel and compiled in memory,
so no compiled ``.mo`` file is ever committed or built. Message ids are the English
source strings; the ``vi`` catalogue translates them and the ``en`` catalogue may stay
empty (identity).

A service may keep its own catalogue directory (``services/<name>/locale``) laid out
like the common one; its messages are merged over the common ones.

The language of a request is, in order: the ``?lang=`` query parameter (remembered in
the ``khaibao_lang`` cookie), the cookie, for the JSON API (``/api/``) the
``Accept-Language`` header, else Vietnamese.
"""
from __future__ import annotations

import contextvars
import functools
import io
from pathlib import Path
from urllib.parse import urlencode

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
DEFAULT_LOCALE = "vi"
SUPPORTED_LOCALES: tuple[str, ...] = ("vi", "en")
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}

COOKIE_NAME = "khaibao_lang"
COOKIE_MAX_AGE = 365 * 24 * 60 * 60
QUERY_PARAM = "lang"

_current_locale: contextvars.ContextVar[str] = contextvars.ContextVar(
    "khaibao_locale", default=DEFAULT_LOCALE
)


def N_(message: str) -> str:
    """Mark a string for extraction without translating it (translate it later)."""
    return message


def normalize_locale(value: str | None) -> str | None:
    """Return a supported language code for ``value`` ("en", "vi-VN", "EN"...), else None."""
    if not value:
        return None
    code = value.strip().replace("_", "-").split("-", 1)[0].lower()
    return code if code in SUPPORTED_LOCALES else None


def _read_catalogue(po_path: Path, lang: str) -> Translations | None:
    if not po_path.is_file():
        return None
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


@functools.lru_cache(maxsize=64)
def get_translations(lang: str, extra_dirs: tuple[Path, ...] = ()) -> Translations:
    """The translations for ``lang``: the common catalogue, then each of ``extra_dirs``
    (``<dir>/<lang>/LC_MESSAGES/messages.po``) merged over it, later ones winning.

    An unsupported language falls back to the default (Vietnamese). Cached: the
    returned object is shared and must not be modified.
    """
    lang = normalize_locale(lang) or DEFAULT_LOCALE
    merged: Translations | None = None
    for directory in (LOCALE_DIR, *extra_dirs):
        loaded = _read_catalogue(Path(directory) / lang / "LC_MESSAGES" / f"{DOMAIN}.po", lang)
        if loaded is None:
            continue
        if merged is None:
            merged = loaded  # keeps this catalogue's plural rule
        else:
            merged.merge(loaded)
    if merged is None:
        merged = Translations(domain=DOMAIN)
    return merged


def gettext(message: str, lang: str | None = None) -> str:
    """Translate ``message`` into ``lang`` (default: the current request's language)."""
    return get_translations(lang or current_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int, lang: str | None = None) -> str:
    return get_translations(lang or current_locale()).ngettext(singular, plural, n)


def current_locale() -> str:
    """The language of the request being handled (set by :class:`LocaleMiddleware`
    and by ``ConsoleTemplates.render``), else the default."""
    return _current_locale.get()


def set_current_locale(lang: str) -> contextvars.Token[str]:
    return _current_locale.set(normalize_locale(lang) or DEFAULT_LOCALE)


def requested_locale(request: HTTPConnection) -> str | None:
    """The language asked for explicitly with ``?lang=``, if it is supported."""
    return normalize_locale(request.query_params.get(QUERY_PARAM))


def accept_language(value: str | None) -> str | None:
    """The supported language an ``Accept-Language`` header prefers most (q-values honoured)."""
    if not value:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(value.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        lang = normalize_locale(tag)
        if lang is not None and quality > 0:
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else None


def is_api(conn: HTTPConnection) -> bool:
    path, root = conn.scope.get("path", ""), conn.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.startswith("/api/")


def negotiate_locale(request: HTTPConnection, api: bool | None = None) -> str:
    """``?lang=`` if valid, else the ``khaibao_lang`` cookie if valid, else (for the JSON API,
    under ``/api/``, or when ``api``) ``Accept-Language``, else ``vi``. Pages keep Vietnamese
    until the user chooses: a browser's language is not the official's choice."""
    chosen = requested_locale(request) or normalize_locale(request.cookies.get(COOKIE_NAME))
    if chosen is None and (is_api(request) if api is None else api):
        chosen = accept_language(request.headers.get("accept-language"))
    return chosen or DEFAULT_LOCALE


def other_locale(lang: str) -> str:
    return "en" if lang == "vi" else "vi"


def lang_switch_url(request: HTTPConnection, lang: str) -> str:
    """The current path and query with ``lang`` replaced (a relative URL)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != QUERY_PARAM]
    params.append((QUERY_PARAM, lang))
    return f"{request.url.path}?{urlencode(params)}"


def _is_secure(request: HTTPConnection) -> bool:
    return request.url.scheme in ("https", "wss")


def locale_cookie_header(lang: str, secure: bool = False) -> str:
    """The ``Set-Cookie`` value remembering ``lang`` for a year."""
    response = Response()
    set_locale_cookie(response, lang, secure=secure)
    return response.headers["set-cookie"]


def set_locale_cookie(response: Response, lang: str, secure: bool = False) -> None:
    response.set_cookie(
        COOKIE_NAME,
        lang,
        max_age=COOKIE_MAX_AGE,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def remember_requested_locale(request: HTTPConnection, response: Response) -> None:
    """Set the cookie on ``response`` when the request carries a valid ``?lang=``."""
    lang = requested_locale(request)
    if lang is None:
        return
    already = any(
        value.startswith(f"{COOKIE_NAME}=") for value in response.headers.getlist("set-cookie")
    )
    if not already:
        set_locale_cookie(response, lang, secure=_is_secure(request))


class LocaleMiddleware:
    """Pure ASGI middleware: negotiates the language of each HTTP request, exposes it
    as ``request.state.lang`` and :func:`current_locale`, and remembers a ``?lang=``
    choice in the ``khaibao_lang`` cookie on whatever response follows."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        lang = negotiate_locale(conn)
        requested = requested_locale(conn)
        secure = _is_secure(conn)
        scope.setdefault("state", {})["lang"] = lang

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if requested is not None and not any(
                    v.startswith(f"{COOKIE_NAME}=") for v in headers.getlist("set-cookie")
                ):
                    headers.append("set-cookie", locale_cookie_header(requested, secure))
                if "content-language" not in headers:
                    headers["content-language"] = lang
            await send(message)

        token = _current_locale.set(lang)
        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            _current_locale.reset(token)


def install_locale(app) -> None:  # noqa: ANN001 - a Starlette or FastAPI app
    """Add :class:`LocaleMiddleware` to ``app``."""
    app.add_middleware(LocaleMiddleware)
