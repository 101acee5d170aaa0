"""The reporting service: read models built from events, dashboards, exports."""
from pathlib import Path

from fastapi import FastAPI

from libs.common.app import ServiceDefinition, create_service_app

from . import api, console
from .handlers import HANDLERS
from .settings import ReportingSettings

HERE = Path(__file__).parent


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    return create_service_app(ServiceDefinition(
        settings=settings or ReportingSettings(),
        migrations=HERE / "migrations",
        routers=[api.router, console.router],
        handlers=HANDLERS,
        template_dir=HERE / "templates",
    ))
