"""The reporting service: read models built from events, dashboards, exports."""
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from libs.common import fieldcrypt
from libs.common.app import ServiceDefinition, create_service_app
from libs.common.consumer import chain_handlers

from . import api, charts, console, exports, exposure_routes, ncovi_routes, report_pages, reports, retention
from .aggregates import HANDLERS as AGGREGATE_HANDLERS
from .directory import HANDLERS as DIRECTORY_HANDLERS
from .fhir import api as fhir_api
from .handlers import HANDLERS as FUNNEL_HANDLERS
from .registrations import HANDLERS as REGISTRATION_HANDLERS
from .settings import ReportingSettings
from .visits import HANDLERS as VISIT_HANDLERS

HERE = Path(__file__).parent
# One map per read model; handlers of one event type run in this order (rebuild.py replays them too).
READ_MODELS = (DIRECTORY_HANDLERS, VISIT_HANDLERS, FUNNEL_HANDLERS, AGGREGATE_HANDLERS, REGISTRATION_HANDLERS)


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    # The key ring of the visits' name and phone, encrypted at rest (visits.py).
    fieldcrypt.register(settings.service_name, settings.field_ring())
    app = create_service_app(ServiceDefinition(
        settings=settings,
        migrations=HERE / "migrations",
        routers=[api.router, console.router, exposure_routes.router, exposure_routes.api_router,
                 fhir_api.router, ncovi_routes.router,
                 report_pages.router, report_pages.api_router, exports.router],
        handlers=chain_handlers(*READ_MODELS),
        template_dir=HERE / "templates",
        workers=[("deployment reports", reports.run_worker), ("retention", retention.run_retention)],
    ))
    app.mount("/static/reporting", StaticFiles(directory=HERE / "static"), name="reporting_static")
    app.state.templates.env.globals.update(bar_chart=charts.bar_chart, hbar_chart=charts.hbar_chart)
    return app
