"""Strict request content types on every route of every service (415 otherwise).

A browser sends a cross-site ``POST`` without asking first (no CORS preflight) only with a
"simple" content type: ``text/plain``, ``application/x-www-form-urlencoded`` or
``multipart/form-data``. So a JSON route that also read a ``text/plain`` (or untyped)
body could be driven by any web page through its visitors' browsers. Every route
therefore takes exactly one family of types:

* JSON routes: ``application/json``, with at most the parameter ``charset=utf-8``;
* form routes (console and public HTML forms, uploads): ``application/x-www-form-urlencoded``
  or ``multipart/form-data`` (any parameters: the multipart boundary, a charset).

Which family a route takes: a path under ``/api/`` is JSON, any other path a form, except
the routes whose declared body says otherwise (a FastAPI ``File``/``Form`` parameter
under ``/api/``, e.g. the list upload ``POST /api/imports``, takes a form; a JSON body
model outside ``/api/`` would take JSON). The exceptions are read once from the route table.

Only a request that HAS a body is checked: one that declares ``Content-Length`` greater
than 0 or ``Transfer-Encoding`` (chunked). A body-less ``POST`` (``Content-Length: 0`` or
neither header, as HTTP/1.1 defines it: accept a registration, issue a batch, sign out)
passes whatever its type says, since there is nothing to interpret. Only the unsafe
methods (POST, PUT, PATCH, DELETE) are concerned.

``ContentTypeMiddleware`` (pure ASGI, installed by ``create_service_app``) answers 415
before any body is read: a problem (RFC 9457, libs/common/problems.py) in the caller's language on JSON routes
and for API clients, the friendly error page for a browser posting a form. The declaration
hot path, answered in front of the stack (services/declaration/fastpath.py), applies the
same ``json_type_allowed`` to its own headers. No route sends CORS headers: nothing here or
anywhere else allows another origin.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from fastapi import params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import compile_path

from .problems import problem_response
from .ui import N_
from .ui.templates import wants_html

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "json"
FORM = "form"
FORM_TYPES = frozenset({b"application/x-www-form-urlencoded", b"multipart/form-data"})
_CHARSET_UTF8 = re.compile(rb'^charset\s*=\s*"?utf-8"?$', re.I)

JSON_REQUIRED = ("Nội dung yêu cầu phải là JSON (Content-Type: application/json) / "
                 "The request body must be JSON (Content-Type: application/json)")
FORM_REQUIRED = ("Biểu mẫu phải được gửi dạng application/x-www-form-urlencoded hoặc multipart/form-data / "
                 "The form must be sent as application/x-www-form-urlencoded or multipart/form-data")
PAGE_TITLE = N_("Unsupported form")
PAGE_MESSAGE = N_("The form was not sent by a page of this system. Open the page again and send it once more.")


def json_type_allowed(value: bytes | None) -> bool:
    """``application/json``, alone or with ``charset=utf-8`` (bytes of the header)."""
    if value is None:
        return False
    if value == b"application/json":  # what nearly every client sends
        return True
    kind, _, rest = value.partition(b";")
    if kind.strip().lower() != b"application/json":
        return False
    rest = rest.strip()
    return not rest or bool(_CHARSET_UTF8.match(rest))


def form_type_allowed(value: bytes | None) -> bool:
    return value is not None and value.partition(b";")[0].strip().lower() in FORM_TYPES


def announced_body(headers: Sequence[tuple[bytes, bytes]]) -> tuple[bool, bytes | None]:
    """(whether the request has a body, its Content-Type header)."""
    has_body, content_type = False, None
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            # Not a number: a body of unknown size (the route refuses it with 400 or 413).
            has_body = has_body or not value.isdigit() or int(value) > 0
        elif name == b"transfer-encoding":
            has_body = True
    return has_body, content_type


def route_kind(route: object) -> str | None:
    """The family a route's declared body takes; None when it reads its body itself."""
    if not isinstance(route, APIRoute) or route.body_field is None:
        return None
    return FORM if isinstance(route.body_field.field_info, params.Form) else JSON  # File is a Form


def default_kind(path: str) -> str:
    return JSON if path.startswith("/api/") else FORM


def _routes_with_paths(routes: Sequence[object]) -> list[tuple[str | None, frozenset[str], object]]:
    """(effective path, methods, route) of every route, those of included routers too."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI flattens included routers into the app's routes
        return [(getattr(r, "path", None), frozenset(getattr(r, "methods", None) or ()), r) for r in routes]
    return [(rc.path, frozenset(rc.methods or ()), rc.original_route) for rc in iter_route_contexts(routes)]


class ContentTypeMiddleware:
    """See the module docstring. ``routes`` is the app's route list, read on the first request."""

    def __init__(self, app, routes: Sequence[object]) -> None:  # noqa: ANN001
        self.app = app
        self.routes = routes
        self.exceptions: list[tuple[re.Pattern, frozenset[str], str]] | None = None

    def _exceptions(self) -> list[tuple[re.Pattern, frozenset[str], str]]:
        if self.exceptions is None:
            found = []
            for path, methods, route in _routes_with_paths(self.routes):
                kind = route_kind(route)
                methods = methods & UNSAFE_METHODS
                if path and kind is not None and methods and kind != default_kind(path):
                    found.append((compile_path(path)[0], methods, kind))
            self.exceptions = found
        return self.exceptions

    def kind_of(self, method: str, path: str) -> str:
        for pattern, methods, kind in self._exceptions():
            if method in methods and pattern.match(path):
                return kind
        return default_kind(path)

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        has_body, content_type = announced_body(scope["headers"])
        if not has_body:
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):  # behind a proxy's prefix: the route's own path
            path = path[len(root):]
        kind = self.kind_of(scope["method"], path)
        if (json_type_allowed if kind == JSON else form_type_allowed)(content_type):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if kind == FORM and wants_html(request) and "app" in scope:
            templates = request.app.state.templates
            response = templates.render_error(request, 415, title=PAGE_TITLE, message=PAGE_MESSAGE)
        else:
            response = problem_response(request, 415, JSON_REQUIRED if kind == JSON else FORM_REQUIRED)
        await response(scope, receive, send)
