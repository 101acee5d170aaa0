"""The directory read model (venues, units) from provisioning's venue events: idempotent,
order-tolerant (the newest occurred_at wins), on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

from services.reporting import directory

from .conftest import DEMO_COMMUNE, DEMO_DISTRICT, OTHER_DISTRICT, OTHER_DISTRICT_COMMUNE, T0, apply, venue_created, venue_updated


async def _venues(database, jurisdiction):  # noqa: ANN001, ANN202
    async with database.transaction(readonly=True) as session:
        return await directory.venues_within(session, jurisdiction)


async def test_created_updated_and_redelivered(reporting_db):
    created = venue_created(code="abcde-fghjk")
    renamed = venue_updated(created, at=T0 + timedelta(hours=1), name="Cổng phụ")
    await apply(reporting_db, directory.HANDLERS, created, renamed, created, renamed)
    [venue] = await _venues(reporting_db, DEMO_DISTRICT)
    assert (venue.code, venue.name, venue.active) == ("ABCDEFGHJK", "Cổng phụ", True)
    async with reporting_db.transaction(readonly=True) as session:
        assert await directory.venue_names(session, [created.data.venue_id]) == {created.data.venue_id: "Cổng phụ"}
        assert (await directory.venue_by_code(session, "abcde fghjk")).venue_id == created.data.venue_id
        assert await directory.venue_by_code(session, "") is None
        [unit] = await directory.units_within(session, DEMO_COMMUNE)
        assert unit.name == "Chợ Cần Thạnh"


async def test_older_event_arriving_late_does_not_win(reporting_db):
    created = venue_created()
    disabled = venue_updated(created, at=T0 + timedelta(hours=2), active=False, unit_name="Chợ mới")
    older = venue_updated(created, at=T0 + timedelta(hours=1), name="Tên cũ", unit_name="Chợ cũ")
    await apply(reporting_db, directory.HANDLERS, disabled, older, created)
    [venue] = await _venues(reporting_db, DEMO_DISTRICT)
    assert (venue.name, venue.active, venue.unit_name) == ("Cổng chính", False, "Chợ mới")
    async with reporting_db.transaction(readonly=True) as session:
        assert await directory.venues_within(session, DEMO_DISTRICT, active_only=True) == []
        [unit] = await directory.units_within(session, DEMO_DISTRICT)
        assert unit.name == "Chợ mới"


async def test_jurisdiction_filter(reporting_db):
    here = venue_created(code="AAAAAAAAAA")
    there = venue_created(code="BBBBBBBBBB", commune=OTHER_DISTRICT_COMMUNE)
    await apply(reporting_db, directory.HANDLERS, here, there)
    assert [v.code for v in await _venues(reporting_db, DEMO_DISTRICT)] == ["AAAAAAAAAA"]
    assert [v.code for v in await _venues(reporting_db, OTHER_DISTRICT)] == ["BBBBBBBBBB"]
    assert len(await _venues(reporting_db, "79")) == 2
