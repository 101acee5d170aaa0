"""The intake service: unit registration (circular points 1.1, 1.2, 1.3 steps 1-2)."""
from pathlib import Path

from fastapi import FastAPI

from libs.common.app import ServiceDefinition, create_service_app

from . import api, console
from .settings import IntakeSettings

HERE = Path(__file__).parent


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    return create_service_app(ServiceDefinition(
        settings=settings or IntakeSettings(),
        migrations=HERE / "migrations",
        routers=[api.router, console.router],
        template_dir=HERE / "templates",
    ))
