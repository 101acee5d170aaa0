"""The provisioning service: identity (accounts, sign-in, tokens), units and venues."""
from pathlib import Path

from fastapi import FastAPI

from libs.common.app import ServiceDefinition, create_service_app
from libs.common.runtime import Runtime

from . import api, console
from .demo import seed_demo
from .settings import ProvisioningSettings
from .tokens import signer_for

HERE = Path(__file__).parent


async def on_startup(runtime: Runtime) -> None:
    signer_for(runtime)  # fail fast without a key in production; create one in development
    if runtime.settings.demo:
        await seed_demo(runtime)


def create_app(settings: ProvisioningSettings | None = None) -> FastAPI:
    return create_service_app(ServiceDefinition(
        settings=settings or ProvisioningSettings(),
        migrations=HERE / "migrations",
        routers=[api.router, console.router],
        template_dir=HERE / "templates",
        on_startup=on_startup,
    ))
