"""The notification service: e-mail, the Support Channel, inboxes and alerts."""
import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from libs.common import fieldcrypt
from libs.common.app import ServiceDefinition, create_service_app
from libs.common.runtime import Runtime

from . import alert_dispatch, api, api_alerts, console, console_alerts, console_support, delivery
from .credentials import private_key
from .handlers import build_handlers
from .settings import NotificationSettings
from .web import local_time

HERE = Path(__file__).parent


def params_of(raw: str) -> dict:
    """The parameters of a system message (JSON), or nothing if unreadable."""
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def on_startup(runtime: Runtime) -> None:
    """The key that opens credentials: created in development, required in production."""
    try:
        private_key(runtime.settings)
    except (OSError, ValueError) as exc:
        # Deliveries wait (nothing is lost) until the key is installed; say so loudly.
        import logging

        logging.getLogger(__name__).error("the credentials private key cannot be loaded: %s", type(exc).__name__)


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()
    # The key ring of the alerts' personal fields, encrypted at rest (alert_models.py).
    fieldcrypt.register(settings.service_name, settings.field_ring())
    app = create_service_app(ServiceDefinition(
        settings=settings,
        migrations=HERE / "migrations",
        routers=[api.router, api_alerts.router, console.router, console_alerts.router, console_support.router],
        handlers=build_handlers(settings),
        template_dir=HERE / "templates",
        on_startup=on_startup,
        workers=[("e-mail worker", delivery.run_worker), ("alert dispatcher", alert_dispatch.run_dispatcher),
                 ("alert watch", alert_dispatch.run_watch)],
    ))
    app.mount("/static/notification", StaticFiles(directory=HERE / "static"), name="notification_static")
    app.state.templates.env.globals["local_time"] = local_time
    app.state.templates.env.globals["params_of"] = params_of
    return app
