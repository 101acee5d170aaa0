"""The declaration service: the public QR endpoint, screening, gate consoles."""
from __future__ import annotations

import contextlib
import gc
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from libs.common.app import ServiceDefinition, create_service_app, security_headers_for
from libs.common.ratelimit import AddressLimits, parse_limit
from libs.common.runtime import Runtime

from . import api, bench_routes, console, fastpath, public
from .gate import offline as gateoffline
from .gate import pages as gatepages
from .subject import routes as subject_routes
from .batcher import GroupCommitter, RelayNudge
from .writers import PostgresWriter, SqliteWriter
from .declare import Ports
from .directory import Directory
from .handlers import HANDLERS
from .passes import load_pass_keys
from .places import load_places
from .retention import retention_loop
from .schemas import DeclarationIn
from .screening import ensure_rule_set
from .settings import DeclarationSettings

HERE = Path(__file__).parent
STATIC_PREFIX = "/static/declaration"


async def start_ports(runtime: Runtime, venue_limit=None) -> Ports:  # noqa: ANN001
    settings: DeclarationSettings = runtime.settings  # type: ignore[assignment]
    database = runtime.database
    async with database.transaction() as session:
        await ensure_rule_set(session, settings.rules_file)
    directory = Directory(database, cache_seconds=settings.cache_seconds)
    await directory.load()
    keys = load_pass_keys(settings.pass_private_key_file, settings.pass_previous_public_key_files,
                          data_dir=settings.data_dir, create=settings.environment != "production")
    url = settings.resolved_database_url()
    if database.sqlite:
        writers = [SqliteWriter(url, settings.sqlite_synchronous, settings.batch_timeout_seconds)]
    else:
        writers = [PostgresWriter(url, settings.batch_timeout_seconds, password=settings.database_password()) for _ in range(settings.batch_writers)]
    committer = GroupCommitter(writers, max_rows=settings.batch_max_rows, max_pending=settings.batch_max_pending,
                               on_commit=RelayNudge(database.outbox_written, max(1, settings.relay_batch_size // 2),
                                                    settings.relay_urgent_ms / 1000),
                               linger=settings.batch_linger_ms / 1000)
    committer.start()
    load_places()  # parse the country's divisions now rather than on the first request
    if settings.environment != "test":
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise take ~150 ms each on this machine
        # (a latency spike every few thousand requests).
        gc.freeze()
    return Ports(directory=directory, committer=committer, keys=keys,
                 valid_for=timedelta(hours=settings.pass_valid_hours), max_group=settings.max_group_size,
                 seal_to=settings.sealing_key(), venue_limit=venue_limit)


def create_app(settings: DeclarationSettings | None = None) -> FastAPI:
    settings = settings or DeclarationSettings()
    # gateoffline before gatepages: /gate/sw.js and /gate/manifest.webmanifest before /gate/{venue_id}
    routers = [gateoffline.api_router, api.router, public.router, gateoffline.router, gatepages.router, console.router,
               subject_routes.router, subject_routes.api_router]
    if settings.bench_routes:
        routers.insert(0, bench_routes.router)
    app = create_service_app(ServiceDefinition(
        settings=settings,
        migrations=HERE / "migrations",
        routers=routers,
        handlers=HANDLERS,
        template_dir=HERE / "templates",
        workers=[("declaration retention", retention_loop)],
    ))
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="declaration_static")
    app.state.visitor_home = "/v"  # a visitor at the root types a venue code; officials sign in
    hot = {"/api/declarations": api.declare_json, **(bench_routes.HANDLERS if settings.bench_routes else {})}
    # In front of the whole stack; it gives its answers the trace id, metrics and headers.
    fastpath.install(app, hot, settings.max_body_bytes, settings.service_name, security_headers_for(settings),
                     limits=app.state.rate_limits)
    venue_limit = _venue_limit(app.state.rate_limits, settings)
    common_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        async with common_lifespan(app) as state:
            runtime: Runtime = app.state.runtime
            ports = await start_ports(runtime, venue_limit)
            runtime.extras["declaration"] = ports
            try:
                yield state
            finally:
                await ports.committer.stop()
                await ports.directory.close()

    app.router.lifespan_context = lifespan
    _document_request_bodies(app)
    return app


def _venue_limit(limits: AddressLimits | None, settings: DeclarationSettings):  # noqa: ANN202
    """People per venue (the code), in the table the per-address limits use (one per service,
    shared by its workers); None when limits are off."""
    limit = parse_limit(settings.rate_limit_venue) if limits is not None else None
    if limit is None:
        return None
    take = limits.buckets.take

    def venue_limit(code: str, people: int) -> float:
        return take(b"venue\0" + code.encode(), limit, people)

    return venue_limit


def _document_request_bodies(app: FastAPI) -> None:
    """The hot path reads its body itself (for speed and the size limit): describe it in OpenAPI."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        body = DeclarationIn.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components["DeclarationIn"] = body
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
