"""A unit's people find their alerts: the unit administrator's and the gate staff's consoles
(provisioning's home, declaration's home, gate list and gate screen) link to notification's
``/alerts/unit`` through the services' public URLs, and the link leads to the page; the
shared menu's notification link takes a unit role there too. The demo unit, signed in."""
from __future__ import annotations

import re

from libs.common.auth import SESSION_COOKIE
from libs.common.demo import DEMO_PASSWORD
from tests.services.conftest import eventually, run_services, service_url

LINK = re.compile(r'<a id="unit-alerts-link" href="([^"]+)">([^<]+)</a>')
ALERTS_URL = service_url("notification") + "/alerts/unit"


async def signed_in(running, username: str) -> dict:  # noqa: ANN001
    response = await running["provisioning"].post("/api/token", json={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"accept": "text/html", "cookie": f"{SESSION_COOKIE}={response.json()['access_token']}"}


def link_of(html: str) -> tuple[str, str]:
    found = LINK.search(html)
    assert found, "no link to the unit's alerts on the page"
    return found.group(1), found.group(2)


async def test_unit_consoles_link_to_their_alerts(make_settings):  # noqa: ANN001
    settings = {s: make_settings(s, demo=s == "provisioning") for s in ("provisioning", "declaration", "notification")}
    async with run_services(settings) as running:
        admin = await signed_in(running, "donvi.chocanthanh")
        gate = await signed_in(running, "cong.chocanthanh")

        home = await running["provisioning"].get("/", headers=admin)
        assert home.status_code == 200
        assert link_of(home.text) == (ALERTS_URL, "Cảnh báo ca nghi ngờ tại địa điểm của đơn vị")
        assert link_of((await running["provisioning"].get("/", headers=gate)).text)[0] == ALERTS_URL
        english = await running["provisioning"].get("/?lang=en", headers=admin)
        assert link_of(english.text)[1] == "Suspected-case alerts raised at your venues"

        for who in (admin, gate):
            page = await running["declaration"].get("/?lang=vi", headers=who)
            assert page.status_code == 200 and link_of(page.text)[0] == ALERTS_URL

        # The gate list and the gate screen (once the declaration service knows the venues).
        async def gate_list():
            page = await running["declaration"].get("/gate", headers=gate)
            return page if page.status_code == 200 and "/gate/" in page.text else None

        listed = await eventually(gate_list, what="the demo venues at the declaration service")
        assert link_of(listed.text)[0] == ALERTS_URL
        venue_path = re.search(r'href="(/gate/[0-9a-f-]{36})"', listed.text).group(1)
        screen = await running["declaration"].get(venue_path, headers=gate)
        assert screen.status_code == 200 and link_of(screen.text)[0] == ALERTS_URL

        # The link leads to the page; notification's home sends a unit role there as well.
        client = running["notification"]
        for who in (admin, gate):
            page = await client.get(ALERTS_URL.removeprefix(service_url("notification")), headers=who)
            assert page.status_code == 200
            assert "<h1" in page.text and "Cảnh báo tại địa điểm của đơn vị" in page.text
            home = await client.get("/", headers=who)
            assert home.status_code == 303 and home.headers["location"] == "/alerts/unit"
