"""The hot path's door: ``POST /api/declarations`` answered in front of the whole ASGI stack.

On this 2-core machine the framework's layers (FastAPI's error and telemetry middleware,
the locale, CSRF, security-header and metrics middleware, the router, dependency solving,
request objects) cost about as much as validating and storing a declaration. This pure
ASGI wrapper sits OUTSIDE them (it wraps the app's built middleware stack), recognises
the few hot POST routes by their exact path, reads the body itself (bounded), and calls
the same function as the FastAPI route (``api.declare_json``), which stays declared for
the OpenAPI document and for any other method or path.

What the common middleware gives every answer, this door gives its own, cheaply and
identically: the trace id (``X-Trace-Id`` taken from the request or made, set for the
logs and the events, echoed in the answer), the request metrics by route template
(``khaibao_http_requests_total``, ``khaibao_http_request_duration_seconds``), the security
headers (``Cache-Control: no-store`` among them: the answer carries names and passes),
``Content-Language`` and a JSON 500 (logged with its trace id, never the body) if the
handler fails. Like every JSON route (libs/common/content_types.py) it takes a body only
as ``application/json`` (415 otherwise, before the body is read), and within the
per-address limit of a declaration (429 with ``Retry-After`` before the body is read,
libs/common/ratelimit.py; the per-venue limit is in ``declare.accept``): a page of another site
cannot make its visitors' browsers declare without a CORS preflight. CSRF does not apply:
the route is public, anonymous, and takes no authority from a cookie. The bench routes'
reference points go through this same door, so the comparison holds.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from libs.common.content_types import JSON_REQUIRED, json_type_allowed
from libs.common.observability import HTTP_LATENCY, HTTP_REQUESTS, new_trace_id, reset_trace_id, set_trace_id
from libs.common.problems import MEDIA_TYPE, problem_bytes
from libs.common.ratelimit import AddressLimits, retry_after, too_many_json
from libs.common.ui.i18n import COOKIE_NAME, _current_locale, accept_language, normalize_locale, set_current_locale

from .web import TOO_LARGE

Handler = Callable[[object, bytes], Awaitable[tuple[int, bytes, list[tuple[str, str]]]]]
log = logging.getLogger(__name__)
FAILED = ("Lỗi hệ thống, vui lòng gửi lại sau ít phút", "Internal error, please send again in a few minutes")
PROBLEM = MEDIA_TYPE.encode()


class FastPath:
    def __init__(self, app, handlers: dict[str, Handler], limit: int, service: str,  # noqa: ANN001
                 headers: Mapping[str, str], runtime: Callable[[], object],
                 limits: AddressLimits | None = None) -> None:
        self.app = app
        self.limits = limits
        self.handlers = handlers
        self.limit = limit
        self.service = service
        self.runtime = runtime
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.latency = {path: HTTP_LATENCY.labels(service, "POST", path) for path in handlers}
        self.counters: dict[tuple[str, int], object] = {}

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        handler = self.handlers.get(scope.get("path")) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        incoming = content_type = None
        cookie_lang = header_lang = None
        limit_exceeded = has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                limit_exceeded = not value.isdigit() or int(value) > self.limit
                has_body = has_body or limit_exceeded or int(value) > 0
            elif name == b"content-type":
                content_type = value
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"x-trace-id":
                incoming = value.decode("latin-1")[:64]
            elif name == b"accept-language":
                header_lang = accept_language(value.decode("latin-1"))
            elif name == b"cookie" and COOKIE_NAME.encode() in value:
                cookie_lang = _cookie_lang(value.decode("latin-1"))
        # The language of the answer, as for every API route (libs/common/problems.py):
        # the console's cookie, else Accept-Language, else Vietnamese.
        lang = cookie_lang or header_lang or "vi"
        lang_token = set_current_locale(lang)
        trace_id = incoming if incoming and incoming.replace("-", "").isalnum() else new_trace_id()
        token = set_trace_id(trace_id)
        status = 500
        try:
            if self.limits is not None and (wait := self.limits.check("declare", scope)):
                # Too many from this address: refused before the body is read, nothing stored.
                await self.limits.hold()
                status, payload, extra = 429, too_many_json(wait, lang), [("retry-after", retry_after(wait))]
            elif has_body and not json_type_allowed(content_type):
                status, payload, extra = 415, problem_bytes(415, lang, JSON_REQUIRED), []
            elif (body := None if limit_exceeded else await self._body(receive)) is None:
                from .api import problem_bytes as refusal_bytes

                status, payload, extra = refusal_bytes(413, [], "body", TOO_LARGE)
            else:
                try:
                    status, payload, extra = await handler(self.runtime(), body)
                except Exception:  # what ServerErrorMiddleware would do, in JSON
                    log.exception("POST %s failed (trace %s)", path, trace_id)
                    status, payload, extra = 500, problem_bytes(500, lang, FAILED), []
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", PROBLEM if status >= 400 else b"application/json"),
                (b"content-language", lang.encode()), *self.headers, (b"content-length", str(len(payload)).encode()), (b"x-trace-id", trace_id.encode()),
                *((k.encode(), v.encode()) for k, v in extra)]})
            await send({"type": "http.response.body", "body": payload})
        finally:
            counter = self.counters.get((path, status))
            if counter is None:
                counter = self.counters[(path, status)] = HTTP_REQUESTS.labels(self.service, "POST", path,
                                                                                str(status))
            counter.inc()
            self.latency[path].observe(time.perf_counter() - started)
            reset_trace_id(token)
            _current_locale.reset(lang_token)

    async def _body(self, receive) -> bytes | None:  # noqa: ANN001
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def install(app, handlers: dict[str, Handler], limit: int, service: str,  # noqa: ANN001
            headers: Mapping[str, str], limits: AddressLimits | None = None) -> None:
    """Put the door in front of ``app``'s middleware stack (built on the first request), and
    let the hot POSTs reach it without FastAPI's own per-request work (its telemetry
    check looks up the OpenTelemetry providers on every request)."""
    build = app.build_middleware_stack

    def build_with_door():  # noqa: ANN202
        return FastPath(build(), handlers, limit, service, headers, lambda: app.state.runtime, limits)

    app.build_middleware_stack = build_with_door
    base = type(app)

    class AppWithDoor(base):  # type: ignore[misc, valid-type]
        async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
            if (scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in handlers
                    and self.middleware_stack is not None):
                await self.middleware_stack(scope, receive, send)  # the door, built by the first request
                return
            await base.__call__(self, scope, receive, send)

    AppWithDoor.__name__ = AppWithDoor.__qualname__ = base.__name__
    app.__class__ = AppWithDoor


def _cookie_lang(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME:
            return normalize_locale(value)
    return None
