"""Helpers of the accounts tests: forwarded batches produced through a real outbox and bus.

Intake is built by another team; these tests do not depend on its code. ``BatchSender``
plays intake's part the way intake does it: ``intake.batch.forwarded`` written to an
outbox table in a database of its own, in a transaction, then moved to the bus by the
real outbox relay.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.common.bus import create_bus
from libs.common.db import Database
from libs.common.events.intake import BatchForwarded, BatchForwardedData, ForwardedUnit
from libs.common.outbox import OutboxRelay, metadata, publish

DEMO_DISTRICT = "79/787"           # Huyện Cần Giờ
DEMO_COMMUNE = "79/787/27664"      # Thị trấn Cần Thạnh
OTHER_COMMUNE = "79/787/27667"     # Xã Bình Khánh
OTHER_DISTRICT = "79/760"          # Quận 1
OTHER_DISTRICT_COMMUNE = "79/760/26740"  # Phường Bến Nghé


def unit(name: str, commune: str = DEMO_COMMUNE, *, email: str | None = None, gates: int = 1,
         **extra: Any) -> ForwardedUnit:
    return ForwardedUnit(
        registration_id=extra.pop("registration_id", uuid.uuid4()),
        reference=extra.pop("reference", f"DK-{uuid.uuid4().hex[:6].upper()}"), unit_name=name,
        unit_type=extra.pop("unit_type", "school"), address=extra.pop("address", "12 Đường Lương Văn Nho"),
        commune_path=commune, contact_name=extra.pop("contact_name", "Nguyễn Thị Hồng"),
        contact_phone=extra.pop("contact_phone", "0909123456"), contact_email=email, venue_count=gates, **extra)


def batch(units: list[ForwardedUnit], district: str = DEMO_DISTRICT, *, reference: str | None = None,
          batch_id: uuid.UUID | None = None, part: int = 1, parts: int = 1,
          total_units: int | None = None) -> BatchForwarded:
    return BatchForwarded(producer="intake", jurisdiction=district, data=BatchForwardedData(
        batch_id=batch_id or uuid.uuid4(), reference=reference or f"LO-{uuid.uuid4().hex[:6].upper()}",
        district_path=district, units=units, part=part, parts=parts, total_units=total_units))


@dataclass
class BatchSender:
    """Publishes events as intake would: outbox in its own database, relay, bus."""

    database: Database
    relay: OutboxRelay
    bus: Any

    producer = "intake"

    @classmethod
    async def start(cls, data_dir: Path, bus_url: str, namespace: str = "") -> BatchSender:
        database = Database(f"sqlite+aiosqlite:///{data_dir / f'fake-{cls.producer}-{uuid.uuid4().hex[:6]}.db'}",
                            sqlite_synchronous="NORMAL")
        async with database.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        bus = create_bus(bus_url, namespace=namespace, partitions=2, client_id=f"khaibao-test-{cls.producer}")
        await bus.start()
        return cls(database, OutboxRelay(database, bus, cls.producer), bus)

    async def send(self, *events: Any) -> None:
        async with self.database.transaction() as session:
            await publish(session, *events)
        while await self.relay.relay_once():
            pass

    async def stop(self) -> None:
        await self.bus.stop()
        await self.database.dispose()


# --- a real SMTP server (aiosmtpd) ------------------------------------------------------

class Inbox:
    """The messages a real aiosmtpd server accepted, parsed back with the standard library."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802, ANN201 - aiosmtpd's hook
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list:
        from email import message_from_bytes
        from email.policy import default

        return [message_from_bytes(e.original_content or e.content, policy=default) for e in self.envelopes]

    def to(self, address: str) -> list:
        return [m for m in self.messages() if address in str(m["To"])]


class MailServer:
    """aiosmtpd on a free port of the loopback interface, in its own thread."""

    def __init__(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        from tests.services.conftest import free_port_block

        self.inbox = Inbox()
        self.port = port or free_port_block(1)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def start(self) -> "MailServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def credentials_in(message) -> tuple[str, str]:  # noqa: ANN001 - email.message.EmailMessage
    """(username, password) from the plain-text part of a credentials e-mail."""
    import re

    text = message.get_body(preferencelist=("plain",)).get_content()
    username = re.search(r"Tên đăng nhập: (\S+)", text).group(1)
    password = re.search(r"Mật khẩu:\s+(\S+)", text).group(1)
    return username, password


async def events_on_bus(bus_url: str, topic: str, *, namespace: str = "", wait: float = 1.0) -> list:
    """Every event of ``topic`` on the bus so far, read by a consumer group of its own."""
    import asyncio

    from libs.common.events import parse_event

    bus = create_bus(bus_url, namespace=namespace, client_id="khaibao-test-reader")
    await bus.start()
    consumer = bus.consumer(f"test-reader-{uuid.uuid4().hex[:8]}", [topic])
    events = []
    try:
        await consumer.start()
        deadline = asyncio.get_running_loop().time() + wait
        while asyncio.get_running_loop().time() < deadline:
            messages = await consumer.poll(max_records=500, timeout=0.2)
            events.extend(parse_event(m.value) for m in messages)
    finally:
        await consumer.stop()
        await bus.stop()
    return events


def launch_up_with(data_dir: Path, log_path: Path, env: dict[str, str], *extra: str):
    """``khaibao up`` like tests.services.conftest.launch_up, with settings in the environment."""
    import os
    import subprocess

    from libs.common.settings import SERVICES
    from tests.services.conftest import REPO_ROOT, UpProcess, free_port_block, khaibao_command
    from tests.services.up import checkout_env

    base = free_port_block(len(SERVICES) + 1)
    environment = checkout_env({k: v for k, v in os.environ.items() if not k.startswith("KHAIBAO_")})
    environment.update(env)
    environment["PYTHONUNBUFFERED"] = "1"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*khaibao_command(), "up", "--data-dir", str(data_dir), "--base-port", str(base), "--no-demo-week", *extra],
            cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    return UpProcess(process, base, data_dir, log_path)
