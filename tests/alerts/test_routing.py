"""An alert reaches exactly the district health center and the commune focal point of the
venue's commune, and nobody else; the same declaration delivered twice makes one alert."""
from __future__ import annotations

import asyncio

from libs.common.auth import Role
from tests.services.conftest import (
    CITY, DEMO_COMMUNE, DEMO_DISTRICT, OTHER_COMMUNE, OTHER_DISTRICT, OTHER_DISTRICT_COMMUNE, eventually,
)

from .support import UNIT_ID, case, flagged


async def test_an_alert_reaches_exactly_its_health_center_and_commune(alerts_factory):
    async with alerts_factory() as a:
        event = flagged(DEMO_COMMUNE)
        alert = await a.arrives(event, Role.HEALTH_OFFICER, DEMO_DISTRICT)
        assert (alert["commune_path"], alert["district_path"], alert["status"]) == (DEMO_COMMUNE, DEMO_DISTRICT, "new")
        ident = alert["id"]

        def ids(rows):  # noqa: ANN001, ANN202
            return {r["id"] for r in rows}

        # The recipients, and the city read-only.
        assert ident in ids(await a.listed(Role.COMMUNE_FOCAL, DEMO_COMMUNE))
        assert ident in ids(await a.listed(Role.CITY_DIC, CITY))
        # Nobody else: another commune of the district, another district's health center and
        # commune, the district focal point (until escalated), another unit.
        for role, where in ((Role.COMMUNE_FOCAL, OTHER_COMMUNE), (Role.HEALTH_OFFICER, OTHER_DISTRICT),
                            (Role.COMMUNE_FOCAL, OTHER_DISTRICT_COMMUNE), (Role.CITY_DIC, OTHER_DISTRICT),
                            (Role.DISTRICT_FOCAL, DEMO_DISTRICT)):
            assert ident not in ids(await a.listed(role, where)), (role, where)
        other_unit = "00000000-0000-4000-8000-000000000777"
        assert ident not in ids(await a.listed(Role.UNIT_ADMIN, DEMO_COMMUNE, unit_id=other_unit))
        assert ident in ids(await a.listed(Role.GATE_STAFF, DEMO_COMMUNE, unit_id=str(UNIT_ID)))

        # The page of the alert: the person's details for the recipients only.
        page = f"/alerts/{ident}"
        for role, where in ((Role.HEALTH_OFFICER, DEMO_DISTRICT), (Role.COMMUNE_FOCAL, DEMO_COMMUNE)):
            response = await a.client.get(page, headers=a.html(role, where))
            assert response.status_code == 200 and "0909 555 123" in response.text, (role, response.status_code)
            assert "Trần Thị Bích Ngọc" in response.text and response.headers["cache-control"] == "no-store"
        city = await a.client.get(page, headers=a.html(Role.CITY_DIC, CITY))
        assert city.status_code == 200 and "0909 555 123" not in city.text and "Trần Thị" not in city.text
        assert 'action="/alerts/' not in city.text  # read-only
        unit = await a.client.get(page, headers=a.html(Role.UNIT_ADMIN, DEMO_COMMUNE, unit_id=str(UNIT_ID)))
        assert unit.status_code == 200 and "T.T.B.N." in unit.text and "0909 555 123" not in unit.text
        for role, where in ((Role.HEALTH_OFFICER, OTHER_DISTRICT), (Role.COMMUNE_FOCAL, OTHER_COMMUNE),
                            (Role.DISTRICT_FOCAL, DEMO_DISTRICT)):
            response = await a.client.get(page, headers=a.html(role, where))
            assert response.status_code == 404 and "0909" not in response.text, (role, where)
        # Acknowledging an alert of another area is refused the same way.
        refused = await a.client.post(f"{page}/ack", headers=a.html(Role.HEALTH_OFFICER, OTHER_DISTRICT))
        assert refused.status_code == 404
        assert (await a.listed(Role.HEALTH_OFFICER, DEMO_DISTRICT))[0]["status"] == "new"


async def test_the_same_declaration_delivered_twice_makes_one_alert(alerts_factory):
    async with alerts_factory() as a:
        event = flagged(DEMO_COMMUNE)
        await a.arrives(event)
        # Redelivered as is (same event id), and re-published by the producer (a new event id).
        await a.sender.send(event)
        again = event.model_copy(update={"id": flagged().id})
        await a.sender.send(again)
        marker = case(DEMO_COMMUNE)
        await a.arrives(marker)  # everything sent before it is handled by now
        rows = await a.listed(Role.HEALTH_OFFICER, DEMO_DISTRICT)
        assert [r["source"] for r in rows].count("flagged") == 1
        assert len(rows) == 2


async def test_alert_events_carry_no_personal_data(alerts_factory, backend):
    from tests.accounts.support import events_on_bus

    async with alerts_factory() as a:
        await a.arrives(flagged(DEMO_COMMUNE))
        events = []

        async def published():
            events[:] = [e for e in await events_on_bus(backend.bus_url, "khaibao.notification",
                                                        namespace=backend.bus_options().get("namespace", ""))
                         if e.type == "notification.alert.raised"]
            return events

        await eventually(published, what="notification.alert.raised on the bus")
        raw = events[0].model_dump_json()
        assert events[0].jurisdiction == DEMO_COMMUNE and events[0].data.district_path == DEMO_DISTRICT
        assert "Ngọc" not in raw and "0909" not in raw and "079190001234" not in raw


async def test_inbox_pages_and_filters(alerts_factory):
    async with alerts_factory() as a:
        first = await a.arrives(flagged(DEMO_COMMUNE))
        officer = a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT)
        page = await a.client.get("/alerts", headers=officer)
        assert page.status_code == 200 and first["id"] in page.text
        assert "Cảnh báo ca nghi ngờ" in page.text and "/static/notification/alerts.js" in page.text
        assert "<script>" not in page.text and " style=" not in page.text
        english = await a.client.get("/alerts?lang=en", headers=officer)
        assert "Suspected-case alerts" in english.text
        # The live rows: nothing newer than the newest, then the next alert.
        rows = await a.client.get("/api/alerts/rows", params={"after": first["received_at"]}, headers=officer)
        assert rows.json()["count"] == 0 and rows.json()["counts"] == {"new": 1}
        second = await a.arrives(case(DEMO_COMMUNE))
        rows = (await a.client.get("/api/alerts/rows", params={"after": first["received_at"]}, headers=officer)).json()
        assert rows["count"] == 1 and second["id"] in rows["html"] and first["id"] not in rows["html"]
        assert "Lê Văn Tâm" not in rows["html"]  # no person in the list
        garbage = await a.client.get("/api/alerts/rows", params={"after": "not-a-time"}, headers=officer)
        assert garbage.status_code == 200 and garbage.json()["count"] == 2
        acked = await a.client.post(f"/alerts/{first['id']}/ack", headers=officer)
        assert acked.status_code == 303
        new_only = await a.client.get("/alerts?status=new", headers=officer)
        assert second["id"] in new_only.text and first["id"] not in new_only.text
        bad_id = await a.client.get("/alerts/not-an-id", headers=officer)
        assert bad_id.status_code == 404
        bad_status = await a.client.get("/api/alerts?status=whatever", headers=a.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        assert bad_status.status_code == 422
        await asyncio.sleep(0)
