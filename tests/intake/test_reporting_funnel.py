"""Reporting's registration funnel, built from intake events only, whatever order they
arrive in (a batch travels on another partition than the reviews before it). On SQLite and
PostgreSQL: the upserts differ by dialect."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from libs.common import migrate
from libs.common.db import Database
from libs.common.events.intake import (
    BatchForwarded,
    BatchForwardedData,
    ForwardedUnit,
    ListSent,
    ListSentData,
    RegistrationAccepted,
    RegistrationExempted,
    RegistrationExemptedData,
    RegistrationReviewedData,
    RegistrationSubmitted,
    RegistrationSubmittedData,
)
from services.reporting import handlers

COMMUNE, DISTRICT = "79/787/27664", "79/787"
T0 = datetime(2021, 6, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
async def reporting(backend):
    """Reporting's database on SQLite, and on PostgreSQL (the backend's second variant)."""
    database = Database(await backend.database_url("reporting"))
    await migrate.upgrade(database, Path(handlers.__file__).parent / "migrations", "reporting")
    yield database
    await database.dispose()


def submitted(rid, late=False, at=T0):  # noqa: ANN001, ANN201
    return RegistrationSubmitted(producer="intake", jurisdiction=COMMUNE, occurred_at=at, data=RegistrationSubmittedData(
        registration_id=rid, reference="DK210620-AAAAAA", unit_name="Chợ", unit_type="market", address="1 Đường A",
        commune_path=COMMUNE, receiver="commune", contact_name="An", contact_phone="0909123456", late=late))


def reviewed(kind, rid, at):  # noqa: ANN001, ANN201
    if kind == "exempt":
        return RegistrationExempted(producer="intake", jurisdiction=COMMUNE, occurred_at=at, data=RegistrationExemptedData(
            registration_id=rid, reference="R", commune_path=COMMUNE, reason="ncovi"))
    return RegistrationAccepted(producer="intake", jurisdiction=COMMUNE, occurred_at=at, data=RegistrationReviewedData(
        registration_id=rid, reference="R", commune_path=COMMUNE, reviewer_path=COMMUNE))


def forwarded(rids, at):  # noqa: ANN001, ANN201
    return BatchForwarded(producer="intake", jurisdiction=DISTRICT, occurred_at=at, data=BatchForwardedData(
        batch_id=uuid4(), reference="CS", district_path=DISTRICT, units=[ForwardedUnit(
            registration_id=r, reference="R", unit_name="Chợ", unit_type="market", address="1 Đường A",
            commune_path=COMMUNE, contact_name="An", contact_phone="0909123456") for r in rids]))


async def apply(database: Database, *events) -> None:  # noqa: ANN002
    for event in events:
        async with database.transaction() as session:
            await handlers.HANDLERS[event.type](session, event)


async def counts(database: Database) -> dict:
    async with database.transaction(readonly=True) as session:
        return (await handlers.funnel_counts(session, DISTRICT)).get(COMMUNE)


async def test_in_order(reporting):
    a, b, c = uuid4(), uuid4(), uuid4()
    hour = timedelta(hours=1)
    await apply(reporting, submitted(a), submitted(b, late=True), submitted(c), reviewed("accept", a, T0 + hour),
                reviewed("exempt", b, T0 + hour),
                ListSent(producer="intake", jurisdiction=COMMUNE, data=ListSentData(
                    list_id=uuid4(), reference="DS", commune_path=COMMUNE, district_path=DISTRICT,
                    registration_ids=[a])),
                forwarded([a], T0 + 3 * hour))
    assert await counts(reporting) == {"submitted": 3, "accepted": 1, "returned": 0, "duplicate": 0, "exempt": 1,
                                       "sent": 1, "forwarded": 1, "late": 1}


async def test_out_of_order(reporting):
    a, b = uuid4(), uuid4()
    hour = timedelta(hours=1)
    # The batch and a later decision arrive before the submission and an earlier decision.
    await apply(reporting, forwarded([a], T0 + 3 * hour), reviewed("exempt", b, T0 + 2 * hour),
                reviewed("accept", b, T0 + hour), submitted(b), reviewed("accept", a, T0 + hour), submitted(a))
    assert await counts(reporting) == {"submitted": 2, "accepted": 1, "returned": 0, "duplicate": 0, "exempt": 1,
                                       "sent": 0, "forwarded": 1, "late": 0}
