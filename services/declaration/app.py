"""The declaration service: the public QR endpoint, screening, gate consoles."""
from pathlib import Path

from fastapi import FastAPI

from libs.common.app import ServiceDefinition, create_service_app

from . import api, console
from .handlers import HANDLERS
from .settings import DeclarationSettings

HERE = Path(__file__).parent


def create_app(settings: DeclarationSettings | None = None) -> FastAPI:
    return create_service_app(ServiceDefinition(
        settings=settings or DeclarationSettings(),
        migrations=HERE / "migrations",
        routers=[api.router, console.router],
        handlers=HANDLERS,
        template_dir=HERE / "templates",
    ))
