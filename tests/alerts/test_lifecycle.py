"""Acknowledgement, escalation to the district, the unit's status page, retention, metrics."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from libs.common.auth import Role
from services.notification.alert_models import Alert, AlertAccess, AlertDeclaration
from services.notification.alerts import erase_expired, escalate_due
from tests.services.conftest import DEMO_COMMUNE, DEMO_DISTRICT, eventually

from .support import UNIT_ID, case, flagged


async def _bus_events(backend, kind: str) -> list:  # noqa: ANN001
    from tests.accounts.support import events_on_bus

    return [e for e in await events_on_bus(backend.bus_url, "khaibao.notification",
                                           namespace=backend.bus_options().get("namespace", ""))
            if e.type == kind]


async def test_acknowledge_and_the_unit_sees_it(alerts_factory, backend):
    async with alerts_factory() as a:
        alert = await a.arrives(flagged(DEMO_COMMUNE))
        unit = a.html(Role.UNIT_ADMIN, DEMO_COMMUNE, unit_id=str(UNIT_ID))
        status = await a.client.get("/alerts/unit", headers=unit)
        assert status.status_code == 200 and "T.T.B.N." in status.text and "Mới" in status.text
        assert "Ngọc" not in status.text and "0909" not in status.text
        assert (await a.client.get("/alerts", headers=unit)).headers["location"] == "/alerts/unit"

        commune = a.html(Role.COMMUNE_FOCAL, DEMO_COMMUNE)
        page = await a.client.get(f"/alerts/{alert['id']}", headers=commune)
        assert 'action="/alerts/' in page.text and "csrf_token" in page.text
        done = await a.client.post(f"/alerts/{alert['id']}/ack", headers=commune)
        assert done.status_code == 303 and "done=alert_acknowledged" in done.headers["location"]
        again = await a.client.post(f"/alerts/{alert['id']}/ack", headers=a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        assert "error=already_acknowledged" in again.headers["location"]
        shown = await a.client.get(again.headers["location"], headers=a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        assert "đã được xác nhận trước đó" in shown.text
        status = await a.client.get("/alerts/unit", headers=unit)
        assert "Đã xác nhận" in status.text
        # The unit cannot acknowledge, the city only reads.
        for headers in (unit, a.html(Role.CITY_DIC, "79")):
            other = await a.arrives(case(DEMO_COMMUNE))
            response = await a.client.post(f"/alerts/{other['id']}/ack", headers=headers)
            assert response.status_code == 403 or "error=not_allowed" in response.headers.get("location", "")
        async with a.runtime.database.transaction(readonly=True) as session:
            log = [(r.action, r.role) for r in (await session.execute(select(AlertAccess))).scalars()]
        assert ("viewed", "commune_focal") in log and ("acknowledged", "commune_focal") in log

        acknowledged = await eventually(lambda: _bus_events(backend, "notification.alert.acknowledged"),
                                        what="notification.alert.acknowledged")
        assert acknowledged[0].data.by_role == "commune_focal" and acknowledged[0].data.escalated is False
        metrics = (await a.client.get("/metrics")).text
        assert "khaibao_alerts_raised_total" in metrics and "khaibao_alert_acknowledge_seconds_count" in metrics


async def test_unacknowledged_alert_escalates_to_the_district(alerts_factory, backend):
    async with alerts_factory(alert_escalate_after=2.0) as a:
        focal = a.html(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
        alert = await a.arrives(flagged(DEMO_COMMUNE))
        assert alert["status"] == "new"
        # The district focal point sees an alert only once it is escalated (never while new).
        assert all(r["status"] == "escalated" for r in await a.listed(Role.DISTRICT_FOCAL, DEMO_DISTRICT))

        async def escalated():
            rows = await a.listed(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
            return rows and rows[0]["status"] == "escalated" and rows[0]

        row = await eventually(escalated, timeout=15, what="the escalation")
        assert row["escalated_at"] is not None
        inbox = await a.client.get("/alerts", headers=focal)
        assert "Đã chuyển cấp lên quận/huyện" in inbox.text
        detail = await a.client.get(f"/alerts/{alert['id']}", headers=focal)
        assert detail.status_code == 200 and "0909" not in detail.text and 'action="/alerts/' in detail.text
        done = await a.client.post(f"/alerts/{alert['id']}/ack", headers=focal)
        assert "done=alert_acknowledged" in done.headers["location"]
        events = await eventually(lambda: _bus_events(backend, "notification.alert.escalated"),
                                  what="notification.alert.escalated")
        assert len(events) == 1 and events[0].data.district_path == DEMO_DISTRICT
        acked = await eventually(lambda: _bus_events(backend, "notification.alert.acknowledged"),
                                 what="notification.alert.acknowledged")
        assert acked[0].data.escalated is True and acked[0].data.by_role == "district_focal"
        # An acknowledged alert never escalates (the watch loop, an hour later).
        quick = await a.arrives(case(DEMO_COMMUNE))
        await a.client.post(f"/alerts/{quick['id']}/ack", headers=a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        async with a.runtime.database.transaction() as session:
            await escalate_due(session, a.runtime.settings, now=datetime.now(UTC) + timedelta(hours=1))
        rows = {r["id"]: r for r in await a.listed(Role.HEALTH_OFFICER, DEMO_DISTRICT)}
        assert rows[quick["id"]]["status"] == "acknowledged"


async def test_person_details_are_erased_after_the_retention_period(alerts_factory):
    async with alerts_factory(retention_days=21) as a:
        alert = await a.arrives(flagged(DEMO_COMMUNE))
        officer = a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT)
        settings = a.runtime.settings
        async with a.runtime.database.transaction() as session:  # 20 days later: kept
            assert await erase_expired(session, settings, now=datetime.now(UTC) + timedelta(days=20)) == 0
        assert "0909 555 123" in (await a.client.get(f"/alerts/{alert['id']}", headers=officer)).text
        async with a.runtime.database.transaction() as session:  # 22 days later: erased
            assert await erase_expired(session, settings, now=datetime.now(UTC) + timedelta(days=22)) == 1
        async with a.runtime.database.transaction(readonly=True) as session:
            row = (await session.execute(select(Alert))).scalar_one()
            red = (await session.execute(select(AlertDeclaration))).scalar_one()
        assert row.person is None and row.initials == "" and row.note is None and row.erased_at is not None
        assert row.phone_key is None and row.id_key is None
        assert red.person is None and red.initials == "" and red.erased_at is not None
        page = await a.client.get(f"/alerts/{alert['id']}", headers=officer)
        assert "0909" not in page.text and "Ngọc" not in page.text and "đã được xóa" in page.text
        assert "Cổng chính chợ Cần Thạnh" in page.text  # the alert itself stays for the statistics
