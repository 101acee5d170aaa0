"""The composition root shared by the five services.

``create_service_app`` builds a FastAPI app whose lifespan opens the database, applies
the service's migrations, connects the bus, and starts the outbox relay, the event
consumer and the refresh of the ended sessions (``sessions.py``); it adds /healthz, /readyz, /metrics, logs with trace ids (JSON or text), request metrics,
the HTML layer and the sign-in redirect for console pages.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import migrate
from .apidocs import install_api_docs
from .auth import PasswordChangeRequired, load_public_key, token_from_request
from .bus import BusUnavailable, create_bus
from .bus.embedded import EmbeddedBus
from .bus.health import bus_health_loop
from .bus.kafka import KafkaBus
from .bus.retention import bus_retention_loop
from .consumer import EventConsumer, Handler, chain_handlers, is_transient
from .content_types import ContentTypeMiddleware
from .csrf import TEXTS as CSRF_TEXTS
from .csrf import CsrfMiddleware, CsrfRejected, origins_of
from .db import Database
from .lifecycle import pause, stop_tasks
from .menu import NavLink, nav_links
from .observability import ObservabilityMiddleware, log_format_for, setup_logging
from .outbox import OutboxRelay
from .problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from .problems import PLEASE_CORRECT, api_locale, problem_response, validation_errors
from .problems import SCHEMA as PROBLEM_SCHEMA
from .ratelimit import RateLimitMiddleware, address_limits_for
from .runtime import Runtime
from .sessions import HANDLERS as SESSION_HANDLERS
from .settings import SERVICES, ServiceSettings
from .ui import install_locale, make_templates, mount_static
from .ui.templates import _wants_html

log = logging.getLogger(__name__)

# Answers that may be stored by browsers and proxies: the static assets (no personal data).
# Every other answer defaults to ``Cache-Control: no-store`` (see SecurityHeadersMiddleware).
CACHEABLE_PREFIX = "/static/"


def security_headers_for(settings: ServiceSettings) -> dict[str, str]:
    """Headers on every response; forms may post to the other consoles (sign-out).

    ``Cache-Control: no-store`` by default: pages and API answers carry personal data, a
    pass, or a capability in their URL (a declaration's result page), and must stay out of
    shared and browser caches (a kiosk, the back button, a proxy). A route that may be
    cached says so itself (the places' JSON, the pass keys); static assets are exempt.
    """
    origins = sorted({f"{urlsplit(u).scheme}://{urlsplit(u).netloc}"
                      for u in [*settings.service_urls.values(), settings.public_base_url] if u})
    headers = {
        "x-content-type-options": "nosniff",
        # Paths never leave the site; other origins (our other consoles) learn only the
        # origin, which the browser must send as Origin for their CSRF check: under
        # "same-origin" a form posted to another console says "Origin: null".
        "referrer-policy": "strict-origin-when-cross-origin",
        "x-frame-options": "DENY",
        "cache-control": "no-store",
        "content-security-policy": (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            f"form-action 'self' {' '.join(origins)}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        ),
    }
    if settings.environment == "production":
        headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
    return headers

class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding the security headers a response does not set itself.

    (Starlette's ``@app.middleware("http")`` runs each request in extra tasks and costs
    several times the whole request on the declaration hot path.)
    """

    def __init__(self, app, headers: Mapping[str, str]) -> None:  # noqa: ANN001
        self.app = app
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.static_headers = [item for item in self.headers if item[0] != b"cache-control"]

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        defaults = self.static_headers if scope["path"].startswith(CACHEABLE_PREFIX) else self.headers

        async def send_with_headers(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                message["headers"] = [*message.get("headers", ()),
                                      *(item for item in defaults if item[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


SERVICE_TITLES = {
    "intake": ("Tiếp nhận đăng ký", "Registration intake"),
    "provisioning": ("Tài khoản và mã QR", "Accounts and QR codes"),
    "declaration": ("Khai báo y tế", "Health declaration"),
    "notification": ("Thông báo và Kênh hỗ trợ", "Notifications and Support Channel"),
    "reporting": ("Báo cáo và thống kê", "Reports and statistics"),
}


@dataclass
class ServiceDefinition:
    """What makes one service: its settings, migrations, routes and event handlers."""

    settings: ServiceSettings
    migrations: Path
    routers: Sequence[APIRouter] = ()
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    template_dir: Path | None = None
    on_startup: Callable[[Runtime], Awaitable[None]] | None = None
    # Background loops over durable work (rows with leases in the service's database):
    # (name, fn(runtime)); supervised like the relay. At shutdown ``runtime.stopping`` is set:
    # a worker returns after its current iteration (wait with ``runtime.pause``), or it is
    # cancelled after KHAIBAO_SHUTDOWN_GRACE_SECONDS.
    workers: Sequence[tuple[str, Callable[[Runtime], Awaitable[None]]]] = ()
    # Apply the session revocations published on the bus (libs/common/sessions.py); False
    # for provisioning, which records its own in the transaction that publishes them.
    session_revocations_from_bus: bool = True


def console_nav(settings: ServiceSettings) -> list[NavLink]:
    """The consoles' menu: each link shown to the roles its page admits (libs/common/menu.py)."""
    return nav_links(settings.service_urls)


async def _supervise(name: str, factory: Callable[[], Awaitable[None]], stopping: asyncio.Event) -> None:
    """Run a background loop until the service stops; if it crashes, log and start it again."""
    while not stopping.is_set():
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s crashed; restarting in 1s", name)
            await pause(stopping, 1)


def create_service_app(definition: ServiceDefinition) -> FastAPI:
    settings = definition.settings
    service = settings.service_name
    templates = make_templates(
        *([definition.template_dir] if definition.template_dir else []),
        locale_dirs=((definition.template_dir.parent / "locale",) if definition.template_dir else ()),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        setup_logging(service, settings.log_level, log_format_for(settings.log_format, settings.environment))
        if settings.environment == "production":
            _check_public_key(settings)
        database = Database.for_settings(settings)
        await migrate.upgrade(database, definition.migrations, service)
        await _register_field_ring(settings, database)
        bus = create_bus(settings.bus_url, partitions=settings.kafka_partitions, namespace=settings.bus_namespace,
                         replication_factor=settings.kafka_replication_factor,
                         min_insync_replicas=settings.kafka_min_insync_replicas, client_id=f"khaibao-{service}",
                         retention_ms=settings.bus_retention_ms())
        await bus.start()
        runtime = Runtime(settings=settings, database=database, bus=bus)
        app.state.runtime = runtime
        # Ended sessions are refused from the first request on, and at once when this
        # process records one itself; the loop below reads the other processes' records.
        database.commit_hooks.append(runtime.sessions.after_commit)
        await runtime.sessions.refresh(database)
        relay = OutboxRelay(database, bus, service, batch_size=settings.relay_batch_size,
                            poll_interval=settings.relay_poll_interval)
        stopping = runtime.stopping
        tasks: dict[str, asyncio.Task] = {}

        def start(name: str, factory: Callable[[], Awaitable[None]]) -> None:
            tasks[name] = asyncio.create_task(_supervise(name, factory, stopping), name=f"{service} {name}")

        start("outbox relay", lambda: relay.run(stopping))
        handlers = dict(definition.handlers)
        if definition.session_revocations_from_bus:
            handlers = chain_handlers(handlers, SESSION_HANDLERS)
        if handlers:
            consumer = EventConsumer(database, bus, service, service, handlers,
                                     max_attempts=settings.consumer_max_attempts,
                                     batch_size=settings.consumer_batch_size,
                                     backoff=settings.consumer_retry_backoff)
            start("event consumer", lambda: consumer.run(stopping))
        if definition.on_startup is not None:
            await definition.on_startup(runtime)
        start("session revocations", lambda: runtime.sessions.run(runtime))
        for name, work in definition.workers:
            start(name, lambda work=work: work(runtime))
        if isinstance(bus, EmbeddedBus):  # Kafka deletes by itself (topics' retention.ms)
            start("bus retention", lambda: bus_retention_loop(runtime))
        elif isinstance(bus, KafkaBus):  # the replication of its topics, as seen from here (bus/health.py)
            start("bus health", lambda: bus_health_loop(runtime))
        log.info("%s started", service)
        try:
            yield
        finally:
            # Cooperative stop: each loop ends after its unit of work (a batch in flight
            # commits or rolls back); only loops still busy after the grace are cancelled.
            await stop_tasks(tasks, stopping, settings.shutdown_grace_seconds)
            await bus.stop()
            await database.dispose()
            log.info("%s stopped", service)

    title_vi, title_en = SERVICE_TITLES[service]
    app = FastAPI(title=f"khaibao {service}: {title_en}", description=title_vi, lifespan=lifespan,
                  docs_url=None, openapi_url="/api/openapi.json", redoc_url=None)
    install_api_docs(app, app.title)  # Swagger UI at /api/docs, self-hosted (the CSP allows no CDN)
    app.state.templates = templates
    app.state.nav = console_nav(settings)
    app.state.service_urls = dict(settings.service_urls)  # templates link across consoles with it
    app.state.help_url = settings.service_urls.get("provisioning", "") + "/help"
    app.state.signout_url = settings.service_urls.get("provisioning", "") + "/signout"
    app.state.service_title = title_vi
    mount_static(app)
    # Inside the locale (its error page speaks the visitor's language) and the CSRF check,
    # outside the routes: a body of the wrong type is refused before anything reads it.
    app.add_middleware(ContentTypeMiddleware, routes=app.router.routes)
    # Per-address limits (shared by the service's workers): inside the locale (its 429 page
    # speaks the visitor's language), outside everything that reads a body.
    app.state.rate_limits = address_limits_for(settings)
    app.add_middleware(RateLimitMiddleware, limits=app.state.rate_limits)
    install_locale(app)

    app.state.csrf_trusted_origins = origins_of([*settings.service_urls.values(), settings.public_base_url])
    app.add_middleware(CsrfMiddleware, secret=settings.secret_key, trusted_origins=app.state.csrf_trusted_origins)
    app.add_middleware(SecurityHeadersMiddleware, headers=security_headers_for(settings))
    app.add_middleware(ObservabilityMiddleware, service=service)
    _install_error_handlers(app, settings)
    app.include_router(_health_router(service))
    for router in definition.routers:
        app.include_router(router)
    _document_error_bodies(app)
    return app


# Routes bound by another standard's error format: FHIR answers an OperationOutcome, the
# OAuth token endpoint RFC 6749's {"error", "error_description"}.
OWN_ERROR_FORMATS = ("/api/fhir/", "/api/oauth/")


def _document_error_bodies(app: FastAPI) -> None:
    """Every error is an RFC 9457 problem (libs/common/problems.py): say so in the OpenAPI
    document (components.schemas.Problem, the 422 and every 4XX answer of each operation as
    ``application/problem+json``), so that clients (and the Schemathesis suite) expect it."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem = {"content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.get("responses") if isinstance(operation, dict) else None
                if responses is None:
                    continue
                if "422" in responses:
                    responses["422"] = {"description": responses["422"].get("description", "Validation Error"),
                                        **problem}
                if not path.startswith(OWN_ERROR_FORMATS):
                    responses.setdefault("4XX", {"description": "Problem (RFC 9457)", **problem})
        for unused in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _register_field_ring(settings: ServiceSettings, database: Database) -> None:
    """The key ring of the service's encrypted columns (libs/common/fieldcrypt.py), once it
    is known to open what is stored: with another key file (a key dropped too early, the
    wrong secret mounted) the service refuses to start, with one line saying why, rather
    than fail on every read and write new rows under a key the old ones do not share."""
    from .fieldcrypt import register
    from .reseal import key_problems, sealed_tables, service_metadata

    ring = settings.field_ring()
    register(settings.service_name, ring)
    problems = await key_problems(database, ring, sealed_tables(service_metadata(settings.service_name)))
    if problems["field"]:
        await database.dispose()
        raise RuntimeError(f"{settings.env_name('field_keys_file')}: the field keys do not open the personal data "
                           f"stored ({'; '.join(problems['field'])}); mount the field_keys file that sealed it "
                           "(after a rotation the previous keys stay below the current one)")
    if problems["index"]:
        await database.dispose()
        raise RuntimeError(f"{settings.env_name('index_key_file')}: the index key is not the one the stored lookups "
                           f"were made with ({'; '.join(problems['index'])}); mount the index_key file of this "
                           "database, or recompute them with `khaibao keys reseal SERVICE --reindex`")


def _check_public_key(settings: ServiceSettings) -> None:
    """Production fails fast without a readable token key, rather than answer 401 to everyone."""
    path = settings.auth_public_key_file
    if path is None or not Path(path).is_file():
        raise RuntimeError(f"the token public key file is missing: {path}")
    load_public_key(Path(path))
    for previous in settings.auth_previous_public_key_files:
        load_public_key(Path(previous))


def _install_error_handlers(app: FastAPI, settings: ServiceSettings) -> None:
    signin = settings.service_urls.get("provisioning", "") + "/signin"
    change_password = settings.service_urls.get("provisioning", "") + "/password"

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _wants_html(request):
            return _problem_of(request, exc)
        if exc.status_code == 401:
            visitors = getattr(app.state, "visitor_home", None)
            if visitors and request.url.path == "/" and token_from_request(request) is None:
                # A visitor (no session at all) at a public service's root: its public page,
                # not the officials' sign-in (declaration: /v, where a venue code is typed).
                return RedirectResponse(visitors, status_code=303)
            return RedirectResponse(f"{signin}?next={quote(str(request.url), safe='')}", status_code=303)
        if isinstance(exc, PasswordChangeRequired):
            return RedirectResponse(change_password, status_code=303)
        if isinstance(exc, CsrfRejected):
            title, message = CSRF_TEXTS.get(getattr(request.state, "lang", None) or "vi", CSRF_TEXTS["vi"])
            return app.state.templates.render_error(request, 403, title=title, message=message)
        return app.state.templates.render_error(request, exc.status_code)

    async def on_crash(request: Request, exc: Exception) -> Response:
        route = request.scope.get("route") and request.scope["route"].path
        if is_transient(exc):
            # The database is restarting or unreachable: nothing was done, say so and
            # when to come back (a 503 that clients retry), not a server error.
            log.warning("database unavailable on %s: %s", route, type(exc).__name__)
            headers = {"Retry-After": "2"}
            if not _wants_html(request):
                return problem_response(request, 503, ("Hệ thống đang bận, vui lòng thử lại sau giây lát",
                                                       "Service temporarily unavailable, please retry"),
                                        headers=headers)
            return app.state.templates.render_error(request, 503, headers=headers)
        log.exception("unhandled error on %s", route)
        if not _wants_html(request):
            return problem_response(request, 500, ("Lỗi máy chủ", "Internal server error"))
        return app.state.templates.render_error(request, 500)

    async def on_invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's default handler echoes the raw input: it may hold a password, and bytes
        # that are not UTF-8 made it crash with a 500. Say where and why, never what.
        lang = api_locale(request)
        return problem_response(request, 422, PLEASE_CORRECT, kind="validation", lang=lang,
                                errors=validation_errors(exc.errors(), lang))

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(Exception, on_crash)


def _problem_of(request: Request, exc: StarletteHTTPException) -> Response:
    """An HTTP error of a JSON route as a problem: the detail may be a message, or a mapping
    with ``detail``, ``errors`` (per field) and ``type`` (a kind of libs/common/problems.py)."""
    detail, kind, errors, lang = exc.detail, None, None, api_locale(request)
    if isinstance(detail, dict):
        kind = detail.get("type")
        errors = detail.get("errors")
        if isinstance(errors, dict):
            errors = [{"field": k, "msg": v} for k, v in errors.items()]
        errors = validation_errors(errors, lang) if errors else None
        detail = detail.get("detail")
    return problem_response(request, exc.status_code, detail, kind=kind, errors=errors, headers=exc.headers, lang=lang)


def _health_router(service: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok", "service": service}

    @router.get("/readyz")
    async def readyz(request: Request) -> Response:
        """Readiness: the database and the bus answer."""
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(runtime.database.ping(), timeout=3)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            await asyncio.wait_for(runtime.bus.ping(), timeout=5)
            checks["bus"] = "ok"
        except (BusUnavailable, asyncio.TimeoutError, OSError) as exc:
            checks["bus"] = f"unavailable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "service": service, "checks": checks},
                            status_code=200 if ready else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
