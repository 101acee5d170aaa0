"""The provisioning service: identity (accounts, sign-in, tokens), units and venues, issuing."""
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from libs.common.app import ServiceDefinition, create_service_app
from libs.common.runtime import Runtime

from . import api, console, console_batches, console_posters, console_units, issuing, signins
from .signins import pages as signin_pages
from .demo import seed_demo
from .handlers import HANDLERS
from .interop import api as interop_api
from .settings import ProvisioningSettings
from .tokens import hash_pool, signer_for
from .web import local_time

HERE = Path(__file__).parent


async def on_startup(runtime: Runtime) -> None:
    signer_for(runtime)  # fail fast without a key in production; create one in development
    await hash_pool(runtime).calibrate()  # the time that pads answers (signins/hashing.py)
    if runtime.settings.demo:
        await seed_demo(runtime)


def create_app(settings: ProvisioningSettings | None = None) -> FastAPI:
    app = create_service_app(ServiceDefinition(
        settings=settings or ProvisioningSettings(),
        migrations=HERE / "migrations",
        routers=[api.router, console.router, console_batches.router, console_posters.router, console_units.router,
                 interop_api.router, signin_pages.router],
        handlers=HANDLERS,
        template_dir=HERE / "templates",
        on_startup=on_startup,
        workers=[("issuing worker", issuing.run_worker), ("sign-in history retention", signins.run_retention)],
        session_revocations_from_bus=False,  # it records the revocations it publishes (signins/sessions.py)
    ))
    app.mount("/static/provisioning", StaticFiles(directory=HERE / "static"), name="provisioning_static")
    app.state.templates.env.globals["local_time"] = local_time
    return app
