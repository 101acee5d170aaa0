"""The notification service: e-mail, the Support Channel, inboxes and alerts."""
from pathlib import Path

from fastapi import FastAPI

from libs.common.app import ServiceDefinition, create_service_app

from . import api, console
from .handlers import HANDLERS
from .settings import NotificationSettings

HERE = Path(__file__).parent


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    return create_service_app(ServiceDefinition(
        settings=settings or NotificationSettings(),
        migrations=HERE / "migrations",
        routers=[api.router, console.router],
        handlers=HANDLERS,
        template_dir=HERE / "templates",
    ))
