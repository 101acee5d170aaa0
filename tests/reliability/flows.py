"""What the whole-flow tests on both backends share: the five services' settings on a
backend (provisioning with the demo accounts), and the demo venue once declaration knows it."""
from __future__ import annotations

from libs.common.auth import Role
from libs.common.settings import SERVICES
from tests.services.conftest import build_settings, eventually


async def backend_settings(backend, keys, extra: dict[str, dict] | None = None) -> dict:  # noqa: ANN001
    """Each service's settings on ``backend``'s database and bus; ``extra``: per service."""
    namespace = backend.bus_options().get("namespace", "")
    return {service: build_settings(
        service, keys, database_url=await backend.database_url(service), bus_url=backend.bus_url,
        bus_namespace=namespace, kafka_partitions=2, demo=service == "provisioning",
        **(extra or {}).get(service, {})) for service in SERVICES}


async def demo_venue(system, mint) -> dict:  # noqa: ANN001
    """The first demo venue, as provisioning lists it, once declaration takes declarations there."""
    venues = (await system["provisioning"].get("/api/venues", headers=mint.headers(Role.CITY_DIC, "79"))).json()
    venue = venues[0]

    async def venue_known():
        return (await system["declaration"].get(f"/api/venues/{venue['code']}")).status_code == 200

    await eventually(venue_known, timeout=60, what="the demo venue in declaration")
    return venue


async def first_alert(system, officer: dict) -> dict:  # noqa: ANN001
    """The first alert in the officer's inbox, once notification has raised it."""
    async def alerted():
        response = await system["notification"].get("/api/alerts", headers=officer)
        return response.status_code == 200 and response.json()

    return (await eventually(alerted, timeout=60, what="the alert"))[0]
