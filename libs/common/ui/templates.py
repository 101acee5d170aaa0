"""Server-side HTML rendering shared by every console.

``make_templates(service_templates_dir, locale_dirs=(service_locale_dir,))`` returns a
:class:`ConsoleTemplates`; ``templates.render(request, "page.html", {...})`` renders a
page in the request's language with the common context (user, nav, help link, CSRF
token, static URLs...).

Translations are never installed on a shared environment per request: each language
gets its own overlay of the base environment, built once and then only read, so
concurrent requests in different languages cannot see each other's catalogue.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from .i18n import (
    DEFAULT_LOCALE,
    LANGUAGE_NAMES,
    SUPPORTED_LOCALES,
    N_,
    _current_locale,
    get_translations,
    lang_switch_url,
    negotiate_locale,
    normalize_locale,
    other_locale,
    remember_requested_locale,
)
from .roles import role_label

UI_DIR = Path(__file__).resolve().parent
COMMON_TEMPLATES_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR / "static"
STATIC_PREFIX = "/static/common"
STATIC_ROUTE_NAME = "common_static"

_I18N_EXTENSION = "jinja2.ext.InternationalizationExtension"

# Default title and message of the error page, by HTTP status.
ERROR_TEXTS: dict[int, tuple[str, str]] = {
    400: (N_("Bad request"), N_("The request could not be understood. Please check the address or the form and try again.")),
    401: (N_("Sign-in required"), N_("Please sign in to continue.")),
    403: (N_("Access denied"), N_("You do not have permission to view this page.")),
    404: (N_("Page not found"), N_("The page you are looking for does not exist or has been moved.")),
    405: (N_("Action not allowed"), N_("This action cannot be performed on this page.")),
    429: (N_("Too many requests"), N_("Please wait a moment and try again.")),
    500: (N_("Something went wrong"), N_("The system could not complete your request. Please try again later.")),
    503: (N_("Service unavailable"), N_("The system is busy or under maintenance. Please try again in a few minutes.")),
}
GENERIC_ERROR = (N_("An error occurred"), N_("Please try again later."))


@functools.lru_cache(maxsize=256)
def _asset_version(relative: str) -> str:
    """A short content hash of a common static file, to bust browser caches."""
    path = (STATIC_DIR / relative).resolve()
    if not path.is_file() or STATIC_DIR not in path.parents:
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def make_static_url(request: Request) -> Callable[[str], str]:
    """``static_url("khaibao.css")`` is the URL of a common static file (versioned);
    an absolute path ("/static/intake/x.css") is only prefixed with the root path."""
    root = request.scope.get("root_path", "").rstrip("/")

    def static_url(path: str) -> str:
        if path.startswith("/"):
            return f"{root}{path}"
        version = _asset_version(path)
        url = f"{root}{STATIC_PREFIX}/{path}"
        return f"{url}?v={version}" if version else url

    return static_url


def mount_static(app: FastAPI) -> None:
    """Serve ``libs/common/ui/static`` at ``/static/common`` (idempotent)."""
    if any(getattr(route, "name", None) == STATIC_ROUTE_NAME for route in app.router.routes):
        return
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name=STATIC_ROUTE_NAME)


VIETNAMESE = re.compile("[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.I)


def one_language(text: str, lang: str) -> str:
    """One half of a "<Vietnamese> / <English>" message (older code joins the two); any other
    text as it is (a name with " / " in a one-language message is no pair)."""
    vi, sep, en = text.partition(" / ")
    if not sep or VIETNAMESE.search(en) or not VIETNAMESE.search(vi):
        return text
    return en if lang == "en" else vi


def _nav(items: Sequence[Any], user: Any) -> list[tuple[str, str]]:
    """The menu of the signed-in user: a link that says which roles it admits
    (``admits(role)``, libs/common/menu.py) is shown to those only; a plain
    (label, url) pair to everyone."""
    role = getattr(user, "role", None)
    shown = []
    for item in items:
        admits = getattr(item, "admits", None)
        if admits is None:
            shown.append(tuple(item))
        elif admits(role):
            shown.append((item.label, item.url))
    return shown


class ConsoleResponse(HTMLResponse):
    """An HTML response that keeps the template and context (handy in tests) and, like
    Starlette's template response, reports them to test clients that ask for it."""

    def __init__(
        self,
        content: str,
        status_code: int,
        headers: Mapping[str, str] | None,
        template: jinja2.Template,
        context: dict[str, Any],
    ) -> None:
        self.template = template
        self.context = context
        super().__init__(content, status_code=status_code, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "http.response.debug" in scope.get("extensions", {}):
            await send(
                {
                    "type": "http.response.debug",
                    "info": {"template": self.template, "context": self.context},
                }
            )
        await super().__call__(scope, receive, send)


def _state(obj: Any, name: str, default: Any = None) -> Any:
    state = getattr(obj, "state", None)
    return getattr(state, name, default) if state is not None else default


class ConsoleTemplates(Jinja2Templates):
    """Jinja2 templates with the common layout, per-language rendering and context."""

    def __init__(
        self,
        template_dirs: Sequence[Path] = (),
        locale_dirs: tuple[Path, ...] = (),
        context_processors: list[Callable[[Request], dict[str, Any]]] | None = None,
    ) -> None:
        loaders: list[jinja2.BaseLoader] = [
            jinja2.FileSystemLoader([str(d) for d in template_dirs])
        ] if template_dirs else []
        loaders.append(jinja2.FileSystemLoader(str(COMMON_TEMPLATES_DIR)))
        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.policies["ext.i18n.trimmed"] = True
        super().__init__(env=env, context_processors=context_processors)
        self.locale_dirs = tuple(Path(d) for d in locale_dirs)
        # The base environment speaks the default language, so that the plain
        # TemplateResponse still works; render() uses the per-language overlays.
        self._install(self.env, DEFAULT_LOCALE)
        self._overlays: dict[str, jinja2.Environment] = {}
        self._lock = threading.Lock()

    def _install(self, env: jinja2.Environment, lang: str) -> None:
        # Use the extension bound to *this* environment: the install method that
        # the extension adds to the base environment is copied into overlays and
        # would write into the base environment's globals.
        env.extensions[_I18N_EXTENSION]._install(  # type: ignore[attr-defined]
            get_translations(lang, self.locale_dirs), newstyle=True
        )
        env.globals["role_label"] = functools.partial(role_label, lang=lang)

    def env_for(self, lang: str) -> jinja2.Environment:
        """The read-only environment of ``lang``, built on first use."""
        lang = normalize_locale(lang) or DEFAULT_LOCALE
        env = self._overlays.get(lang)
        if env is not None:
            return env
        with self._lock:
            env = self._overlays.get(lang)
            if env is None:
                env = self.env.overlay()
                # Own layer for the translation functions, reading through to the
                # base globals (so globals added to self.env later are seen too).
                env.globals = collections.ChainMap({}, self.env.globals)  # type: ignore[assignment]
                self._install(env, lang)
                self._overlays[lang] = env
        return env

    def common_context(self, request: Request, lang: str) -> dict[str, Any]:
        """The variables every page gets; a page's own context is laid over them."""
        app = request.scope.get("app")
        return {
            "request": request,
            "lang": lang,
            "other_lang": other_locale(lang),
            "languages": [
                {
                    "code": code,
                    "name": LANGUAGE_NAMES[code],
                    "url": lang_switch_url(request, code),
                    "current": code == lang,
                }
                for code in SUPPORTED_LOCALES
            ],
            "lang_switch_url": lang_switch_url(request, other_locale(lang)),
            "user": _state(request, "user"),
            "nav": _nav(_state(app, "nav", None) or [], _state(request, "user")),
            "service_urls": dict(_state(app, "service_urls", None) or {}),
            "help_url": _state(app, "help_url", None) or "/help",
            "home_url": _state(app, "home_url", None) or "/",
            "signout_url": _state(app, "signout_url", None),
            "csrf_token": _state(request, "csrf_token", None) or "",
            "static_url": make_static_url(request),
            "messages": [],
        }

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """Render template ``name`` in the request's language."""
        lang = normalize_locale(_state(request, "lang")) or negotiate_locale(request)
        token = _current_locale.set(lang)
        try:
            full = self.common_context(request, lang)
            for processor in self.context_processors:
                full.update(processor(request))
            full.update(context or {})
            # A use case's refusal or notice written "<Vietnamese> / <English>": the page shows
            # the half of its language.
            if isinstance(full.get("error"), str):
                full["error"] = one_language(full["error"], lang)
            full["messages"] = [(kind, one_language(text, lang)) if isinstance(text, str) else (kind, text)
                                for kind, text in full.get("messages") or []]
            template = self.env_for(lang).get_template(name)
            content = template.render(full)
        finally:
            _current_locale.reset(token)
        response = ConsoleResponse(content, status_code, headers, template, full)
        response.headers["content-language"] = lang
        response.headers.setdefault("vary", "Cookie")
        remember_requested_locale(request, response)
        return response

    def render_error(
        self,
        request: Request,
        status_code: int,
        title: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """The friendly error page; ``title`` and ``message`` are msgids or text."""
        default_title, default_message = ERROR_TEXTS.get(status_code, GENERIC_ERROR)
        return self.render(
            request,
            "error.html",
            {
                "status_code": status_code,
                "error_title": title or default_title,
                "error_message": message or default_message,
            },
            status_code=status_code,
            headers=headers,
        )


def make_templates(
    *template_dirs: Path, locale_dirs: tuple[Path, ...] = ()
) -> ConsoleTemplates:
    """Templates looked up in ``template_dirs`` first, then the common ones; messages
    from ``locale_dirs`` are merged over the common catalogue."""
    return ConsoleTemplates(template_dirs, locale_dirs=locale_dirs)


def wants_html(request: Request) -> bool:
    """Whether an error should be answered with an HTML page (a browser asking for
    a page) rather than JSON (an API client)."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and not request.url.path.startswith("/api")


_wants_html = wants_html  # the name libs.common.app imports


def install_error_pages(app: FastAPI, templates: ConsoleTemplates) -> None:
    """Friendly HTML error pages for browsers (JSON stays JSON for API clients).

    The page never shows exception details: only the status, a title and a message.
    """

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not wants_html(request):
            return await http_exception_handler(request, exc)
        return templates.render_error(request, exc.status_code, headers=exc.headers)

    async def on_crash(request: Request, exc: Exception) -> Response:
        if not wants_html(request):
            from starlette.responses import PlainTextResponse

            return PlainTextResponse("Internal Server Error", status_code=500)
        return templates.render_error(request, 500)

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_crash)
