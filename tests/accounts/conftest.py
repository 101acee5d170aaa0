"""Fixtures of the accounts tests: provisioning and notification in-process on real engines,
a real SMTP server (aiosmtpd), forwarded batches sent through a real outbox and bus."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from libs.common.auth import Role
from tests.services.conftest import (  # noqa: F401 - fixtures re-exported for this package
    Minter, RunningServices, _clean_environment, build_settings, eventually, free_port_block, keys, make_settings,
    mint, run_services,
)

from .support import BatchSender, MailServer

HTML = {"accept": "text/html"}
FAST = {"relay_poll_interval": 0.05}
FAST_NOTIFICATION = {"delivery_poll_interval": 0.05, "email_retry_initial_seconds": 0.2,
                     "email_retry_max_seconds": 0.5, **FAST}


@pytest.fixture
def mail_server():
    server = MailServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Accounts:
    """The running services and what the tests drive them with."""

    system: RunningServices
    sender: BatchSender
    minter: Minter
    mail: MailServer | None

    @property
    def provisioning(self):  # noqa: ANN201
        return self.system["provisioning"]

    @property
    def notification(self):  # noqa: ANN201
        return self.system["notification"]

    def headers(self, role: Role | str, jurisdiction: str = "79", **kwargs: Any) -> dict[str, str]:
        return self.minter.headers(role, jurisdiction, **kwargs)

    def html(self, role: Role | str, jurisdiction: str = "79", **kwargs: Any) -> dict[str, str]:
        return {**HTML, **self.headers(role, jurisdiction, **kwargs)}

    async def batch_arrives(self, event) -> str:  # noqa: ANN001
        """Send a forwarded batch and wait until provisioning lists it; its id."""
        await self.sender.send(event)
        city = self.headers(Role.CITY_DIC)
        batch_id = str(event.data.batch_id)

        async def listed():
            response = await self.provisioning.get("/api/batches", headers=city)
            return any(b["id"] == batch_id for b in response.json())

        await eventually(listed, what="the forwarded batch in provisioning")
        return batch_id

    async def issue(self, batch_id: str, registration_id: str | None = None, *, wait: bool = True) -> dict:
        city = self.headers(Role.CITY_DIC)
        body = {"registration_id": registration_id} if registration_id else None
        response = await self.provisioning.post(f"/api/batches/{batch_id}/issue", headers=city, json=body)
        assert response.status_code == 202, response.text
        job = response.json()
        if not wait:
            return job

        async def done():
            state = (await self.provisioning.get(f"/api/jobs/{job['id']}", headers=city)).json()
            return state if state["status"] in ("done", "failed") else None

        return await eventually(done, timeout=60, what="the issuing job")


def start_accounts(make: Callable[..., Any], keys, *, mail: MailServer | None,  # noqa: ANN001
                         provisioning: dict | None = None, notification: dict | None = None,
                         extra_services: tuple[str, ...] = ()):
    notification_settings = {**FAST_NOTIFICATION, "smtp_port": mail.port if mail else free_port_block(1),
                             **(notification or {})}
    settings = {
        "provisioning": make("provisioning", **{**FAST, **(provisioning or {})}),
        "notification": make("notification", **notification_settings),
    }
    for service in extra_services:
        settings[service] = make(service, **FAST)
    return settings


@pytest.fixture
async def accounts(make_settings, keys, mint, mail_server):
    settings = start_accounts(make_settings, keys, mail=mail_server)
    async with run_services(settings) as system:
        sender = await BatchSender.start(keys.data_dir, settings["provisioning"].bus_url)
        try:
            yield Accounts(system, sender, mint, mail_server)
        finally:
            await sender.stop()


async def wait_for_mail(server: MailServer, count: int, timeout: float = 30.0) -> list:
    async def arrived():
        return server.inbox.messages() if len(server.inbox.envelopes) >= count else None

    return await eventually(arrived, timeout=timeout, what=f"{count} e-mail(s) at the SMTP server")


async def settle(seconds: float = 0.2) -> None:
    await asyncio.sleep(seconds)
