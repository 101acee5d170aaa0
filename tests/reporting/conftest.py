"""Fixtures of the reporting tests (exposure, FHIR, NCOVI, retention): reporting's own
database migrated on SQLite (and on PostgreSQL, the ``backend`` fixture's second variant),
event builders, and the shared service fixtures re-exported."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from libs.common import fieldcrypt, migrate
from libs.common.db import Database
from libs.common.events.declaration import DeclarationSubmitted, DeclarationSubmittedData
from libs.common.events.provisioning import (
    VenueCreated,
    VenueCreatedData,
    VenueStateData,
    VenueUpdated,
)
from services.reporting import app as reporting_app
from services.reporting.app import create_app  # noqa: F401 - the app must import
from tests.services.conftest import (  # noqa: F401 - fixtures re-exported
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    OTHER_COMMUNE,
    OTHER_DISTRICT,
    OTHER_DISTRICT_COMMUNE,
    Minter,
    RunningServices,
    _clean_environment,
    build_settings,
    eventually,
    keys,
    make_settings,
    mint,
    run_services,
)

T0 = datetime(2021, 6, 20, 8, 0, tzinfo=UTC)
MIGRATIONS = Path(reporting_app.__file__).parent / "migrations"


@pytest.fixture(autouse=True)
def _reporting_ring(keys):
    """The visits' name and phone are sealed with reporting's ring: the app registers it when
    created; the tests that apply handlers to a bare database need it too (the same ring)."""
    fieldcrypt.register("reporting", build_settings("reporting", keys).field_ring())


@pytest.fixture
async def reporting_db(backend):
    """Reporting's database, migrated: SQLite, and PostgreSQL when the backend provides it."""
    database = Database(await backend.database_url("reporting"))
    await migrate.upgrade(database, MIGRATIONS, "reporting")
    yield database
    await database.dispose()


@pytest.fixture
async def sqlite_db(tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'reporting.db'}")
    await migrate.upgrade(database, MIGRATIONS, "reporting")
    yield database
    await database.dispose()


def venue_created(venue_id: UUID | None = None, *, code: str = "ABCDEFGHJK", name: str = "Cổng chính",
                  unit_id: UUID | None = None, unit_name: str = "Chợ Cần Thạnh", commune: str = DEMO_COMMUNE,
                  at: datetime = T0) -> VenueCreated:
    return VenueCreated(producer="provisioning", jurisdiction=commune, occurred_at=at, data=VenueCreatedData(
        venue_id=venue_id or uuid4(), code=code, unit_id=unit_id or uuid4(), unit_name=unit_name, name=name,
        address="12 Đường Lương Văn Nho", commune_path=commune))


def venue_updated(created: VenueCreated, *, at: datetime, active: bool = True, **changes) -> VenueUpdated:  # noqa: ANN003
    data = {**created.data.model_dump(), "active": active, **changes}
    return VenueUpdated(producer="provisioning", jurisdiction=data["commune_path"], occurred_at=at,
                        data=VenueStateData(**data))


def submitted(venue: VenueCreated, *, at: datetime = T0, name: str = "Nguyễn Văn An",
              phone: str | None = "0909123456", result: str = "green", channel: str = "self",
              declaration_id: UUID | None = None) -> DeclarationSubmitted:
    v = venue.data
    return DeclarationSubmitted(producer="declaration", jurisdiction=v.commune_path, occurred_at=at,
                                data=DeclarationSubmittedData(
        declaration_id=declaration_id or uuid4(), submission_id=uuid4(), venue_id=v.venue_id,
        venue_code=v.code, unit_id=v.unit_id, commune_path=v.commune_path, submitted_at=at,
        valid_until=at + timedelta(hours=24), result=result, reasons=["fever"] if result == "red" else [],
        rule_version="2021-06", channel=channel, full_name=name, phone=phone))


async def apply(database: Database, handlers: dict, *events) -> None:  # noqa: ANN002
    """Each event in its own transaction, as the consumer does."""
    for event in events:
        async with database.transaction() as session:
            await handlers[event.type](session, event)
