"""The intake service: unit registration (circular points 1.1, 1.2, 1.3 steps 1-2)."""
from __future__ import annotations

import contextlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from libs.common.app import ServiceDefinition, create_service_app
from libs.common.runtime import Runtime

from . import api, console, console_imports, console_lists, public
from .settings import IntakeSettings
from .retention import retention_loop
from .worker import background

HERE = Path(__file__).parent


async def on_startup(runtime: Runtime) -> None:
    if runtime.settings.demo:
        from .demo import seed_demo

        await seed_demo(runtime)


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    app = create_service_app(ServiceDefinition(
        settings=settings or IntakeSettings(),
        migrations=HERE / "migrations",
        routers=[api.router, public.router, console.router, console_lists.router, console_imports.router],
        template_dir=HERE / "templates",
        on_startup=on_startup,
        workers=[("file retention", retention_loop)],
    ))
    app.mount("/static/intake", StaticFiles(directory=HERE / "static" / "intake"), name="intake_static")

    # The platform's lifespan (database, migrations, bus, relay) wraps ours: the list
    # worker, the reply sender and the SMTP receiver start after it and stop before it.
    platform = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async with platform(app) as state:
            async with background(app.state.runtime):
                yield state

    app.router.lifespan_context = lifespan
    return app
