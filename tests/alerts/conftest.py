"""Fixtures of the alert tests: notification in-process on the backend of the test (SQLite +
embedded bus, or PostgreSQL + Kafka), declaration events through a real outbox and bus,
a real SMTP server (aiosmtpd) and a real webhook receiver."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from libs.common.auth import Role
from tests.accounts.support import MailServer
from tests.services.conftest import (  # noqa: F401 - fixtures re-exported for this package
    Minter, RunningServices, _clean_environment, build_settings, eventually, keys, make_settings, mint, run_services,
)

from .support import EventSender, Hook, write_person_key

HTML = {"accept": "text/html"}
FAST = {"relay_poll_interval": 0.05, "alert_poll_interval": 0.05, "alert_retry_initial_seconds": 0.2,
        "alert_retry_max_seconds": 0.5, "alert_check_interval": 0.1}


@pytest.fixture
def mail_server():
    server = MailServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hook():
    receiver = Hook().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@dataclass
class Alerts:
    system: RunningServices
    sender: EventSender
    minter: Minter

    @property
    def client(self):  # noqa: ANN201
        return self.system["notification"]

    @property
    def runtime(self):  # noqa: ANN201
        return self.system.runtime("notification")

    def headers(self, role: Role | str, jurisdiction: str = "79", **kwargs: Any) -> dict[str, str]:
        return self.minter.headers(role, jurisdiction, **kwargs)

    def html(self, role: Role | str, jurisdiction: str = "79", **kwargs: Any) -> dict[str, str]:
        return {**HTML, **self.headers(role, jurisdiction, **kwargs)}

    async def listed(self, role: Role | str, jurisdiction: str, **kwargs: Any) -> list[dict]:
        response = await self.client.get("/api/alerts", headers=self.headers(role, jurisdiction, **kwargs))
        assert response.status_code == 200, response.text
        return response.json()

    async def arrives(self, event, role: Role | str = Role.HEALTH_OFFICER, jurisdiction: str = "79/787") -> dict:  # noqa: ANN001
        """Send a declaration event and wait for its alert in the recipient's list."""
        await self.sender.send(event)
        source_id = str(getattr(event.data, "declaration_id", None) if event.type == "declaration.flagged"
                        else event.data.case_id)

        async def found():
            return next((a for a in await self.listed(role, jurisdiction) if a["source_id"] == source_id), None)

        return await eventually(found, what="the alert in the recipient's list")


async def start_alerts(backend, keys, minter, **overrides: Any):  # noqa: ANN001, ANN201
    person_key = keys.data_dir / "keys" / "alerts-person-private.pem"
    write_person_key(person_key)  # the helpers seal the person to it (support.PERSON_KEY)
    settings = build_settings(
        "notification", keys, database_url=await backend.database_url("notification"), bus_url=backend.bus_url,
        bus_namespace=backend.bus_options().get("namespace", ""), kafka_partitions=2,
        credentials_private_key_file=person_key, **{**FAST, **overrides})
    return settings


@pytest.fixture
def alerts_factory(backend, keys, mint, tmp_path):
    """``async with alerts_factory(**settings) as a``: notification running on the test's backend."""
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(**overrides: Any):
        settings = await start_alerts(backend, keys, mint, **overrides)
        sender = await EventSender.start(tmp_path, backend.bus_url, backend.bus_options().get("namespace", ""))
        try:
            async with run_services({"notification": settings}) as system:
                yield Alerts(system, sender, mint)
        finally:
            await sender.stop()

    return factory
