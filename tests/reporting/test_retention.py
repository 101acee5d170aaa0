"""Retention with a moved clock: after the period (default 21 days) the name and phone of
a visit are erased, the visit still counts, the access log stays, the exposure query and
the FHIR export show no contact details any more; the background loop of the running
service does it by itself. On SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import func, select

from libs.common.auth import Principal, Role
from libs.common.events.declaration import DeclarationSubmitted
from services.reporting import directory, visits
from services.reporting.accesslog import entries_within, record_access
from services.reporting.exposure import ExposureQuery, run_exposure
from services.reporting.retention import erase_expired

from .conftest import DEMO_COMMUNE, DEMO_DISTRICT, T0, apply, build_settings, eventually, run_services, submitted, venue_created

HANDLERS = {**directory.HANDLERS, **visits.HANDLERS}
OFFICER = Principal(account_id="a1", username="yte.cangio", name="Cán bộ Y tế", role=Role.HEALTH_OFFICER,
                    jurisdiction=DEMO_DISTRICT)


async def _rows(database):  # noqa: ANN001, ANN202
    async with database.transaction(readonly=True) as session:
        return (await session.execute(select(visits.visits.c.full_name, visits.visits.c.phone,
                                             visits.visits.c.erased_at).order_by(visits.visits.c.seq))).all()


async def test_erased_after_the_period_counts_kept(reporting_db):
    venue = venue_created()
    old = submitted(venue, at=T0, name="Người cũ", phone="0900000001")
    recent = submitted(venue, at=T0 + timedelta(days=5), name="Người mới", phone="0900000002")
    await apply(reporting_db, HANDLERS, venue, old, recent)
    async with reporting_db.transaction() as session:
        await record_access(session, OFFICER, "exposure.query", scope_path=DEMO_COMMUNE, case_reference="CG-1",
                            reason="Ca dương tính", row_count=2, now=T0 + timedelta(days=1))

    # day 20: nothing is due yet
    async with reporting_db.transaction() as session:
        assert await erase_expired(session, retention_days=21, now=T0 + timedelta(days=20)) == 0
    # day 22: the first visit is erased, the second is not
    async with reporting_db.transaction() as session:
        assert await erase_expired(session, retention_days=21, now=T0 + timedelta(days=22)) == 1
    rows = await _rows(reporting_db)
    assert [(r.full_name, r.phone) for r in rows] == [(None, None), ("Người mới", "0900000002")]
    assert rows[0].erased_at is not None
    # a second pass the same day erases nothing more (idempotent); a redelivered event does not bring it back
    async with reporting_db.transaction() as session:
        assert await erase_expired(session, retention_days=21, now=T0 + timedelta(days=22)) == 0
    await apply(reporting_db, HANDLERS, old)
    assert (await _rows(reporting_db))[0].full_name is None
    # a shorter period set by the city: in batches
    async with reporting_db.transaction() as session:
        assert await erase_expired(session, retention_days=14, now=T0 + timedelta(days=22), batch_size=1) == 1

    async with reporting_db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(visits.visits))).scalar_one() == 2
        entries, total = await entries_within(session, DEMO_DISTRICT)
        assert total == 1 and entries[0].case_reference == "CG-1"
        # the exposure query still finds both visits, without contact details
        result = await run_exposure(session, OFFICER, ExposureQuery(
            "CG-2", "Ca dương tính thứ hai", venue.data.venue_id, None, None, T0 - timedelta(hours=1),
            T0 + timedelta(days=6)), now=T0 + timedelta(days=22))
        assert result.total == 2 and result.erased == 2


async def test_the_running_service_erases_by_itself(keys):
    settings = build_settings("reporting", keys, retention_days=21, retention_interval_seconds=0.2)
    async with run_services({"reporting": settings}) as running:
        database = running.runtime("reporting").database
        venue = venue_created()
        now = datetime.now(UTC)
        old: DeclarationSubmitted = submitted(venue, at=now - timedelta(days=22), name="Người cũ")
        fresh = submitted(venue, at=now - timedelta(hours=1), name="Người mới")
        counted = REGISTRY.get_sample_value("khaibao_retention_erased_total", {"service": "reporting"}) or 0
        await apply(database, HANDLERS, venue, old, fresh)

        async def erased():  # noqa: ANN202
            rows = await _rows(database)
            return [r.full_name for r in rows] == [None, "Người mới"]
        await eventually(erased, timeout=10, what="the old visit erased by the retention loop")

        async def counted_up():  # noqa: ANN202 - the loop counts after its commit
            erased_now = REGISTRY.get_sample_value("khaibao_retention_erased_total", {"service": "reporting"})
            return (erased_now or 0) > counted
        await eventually(counted_up, timeout=5, what="khaibao_retention_erased_total{service=reporting}")
