"""The reporting service: read models built from events, dashboards, exports."""
from pathlib import Path

from fastapi import FastAPI

from libs.common.app import ServiceDefinition, create_service_app
from libs.common.consumer import chain_handlers

from . import api, console
from .directory import HANDLERS as DIRECTORY_HANDLERS
from .handlers import HANDLERS as FUNNEL_HANDLERS
from .settings import ReportingSettings

HERE = Path(__file__).parent


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    return create_service_app(ServiceDefinition(
        settings=settings or ReportingSettings(),
        migrations=HERE / "migrations",
        routers=[api.router, console.router],
        # One map per read model; handlers of one event type run in this order.
        handlers=chain_handlers(DIRECTORY_HANDLERS, FUNNEL_HANDLERS),
        template_dir=HERE / "templates",
    ))
