"""Fixtures of the declaration tests: the real service app, venues learnt from real events.

``venues`` are announced the way provisioning announces them, as ``provisioning.venue.*``
events on the bus; the declaration service's consumer copies them. ``declaration_app``
runs on SQLite and the embedded bus; ``declaration_on`` runs on either backend (the
``backend`` fixture of tests/conftest.py) for the tests about events.
"""
from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from libs.common.bus import OutgoingMessage, create_bus
from libs.common.events.provisioning import VenueCreated, VenueCreatedData
from libs.common.fieldcrypt import derived_ring, register
from tests.services.conftest import (  # noqa: F401 - fixtures re-exported for this directory
    CITY, DEMO_COMMUNE, DEMO_DISTRICT, OTHER_COMMUNE, _clean_environment, build_settings, eventually, keys,
    make_settings, mint, run_services,
)

@pytest.fixture(autouse=True)
def field_ring():
    """The declaration service's key ring, for the tests that drive its writers or models
    without starting the service (which registers its own at start)."""
    ring = derived_ring("declaration tests", "declaration")
    register("declaration", ring)
    return ring


UNIT_A = uuid.UUID("0a000000-0000-4000-8000-00000000000a")
UNIT_B = uuid.UUID("0b000000-0000-4000-8000-00000000000b")


@dataclass
class TestVenue:
    venue_id: uuid.UUID
    code: str
    unit_id: uuid.UUID
    name: str
    commune_path: str = DEMO_COMMUNE
    unit_name: str = "Chợ Cần Thạnh"
    address: str = "Đường Lương Văn Nho, thị trấn Cần Thạnh"

    def created(self) -> VenueCreated:
        return VenueCreated(producer="provisioning", jurisdiction=self.commune_path, data=VenueCreatedData(
            venue_id=self.venue_id, code=self.code, unit_id=self.unit_id, unit_name=self.unit_name, name=self.name,
            address=self.address, commune_path=self.commune_path))

    def state(self, active: bool = True) -> dict:
        return {"venue_id": self.venue_id, "code": self.code, "unit_id": self.unit_id, "unit_name": self.unit_name,
                "name": self.name, "address": self.address, "commune_path": self.commune_path, "active": active}


def make_venues() -> dict[str, TestVenue]:
    suffix = uuid.uuid4().hex[:4].upper().replace("0", "2").replace("1", "3")
    return {
        "main": TestVenue(uuid.uuid4(), f"MAIN{suffix}AB", UNIT_A, "Cổng chính"),
        "side": TestVenue(uuid.uuid4(), f"SIDE{suffix}CD", UNIT_A, "Cổng phụ"),
        "other": TestVenue(uuid.uuid4(), f"OTHR{suffix}EF", UNIT_B, "Cổng trường", commune_path=OTHER_COMMUNE,
                           unit_name="Trường Tiểu học Bình Khánh", address="Xã Bình Khánh"),
    }


async def publish(bus_url: str, namespace: str, *events) -> None:  # noqa: ANN002
    bus = create_bus(bus_url, namespace=namespace)
    await bus.start()
    try:
        await bus.publish([OutgoingMessage(topic=e.topic, key=e.partition_key().encode(), value=e.to_bytes(),
                                           headers=(("type", e.type.encode()), ("trace_id", e.trace_id.encode())))
                           for e in events])
    finally:
        await bus.stop()


async def read_events(bus_url: str, namespace: str, wanted, *, timeout: float = 60.0,  # noqa: ANN001
                      topic: str = "khaibao.declaration") -> list[dict]:
    """Events of ``topic`` from its start (a fresh group) until ``wanted(events)`` is true."""
    bus = create_bus(bus_url, namespace=namespace)
    await bus.start()
    consumer = bus.consumer(f"test-{uuid.uuid4().hex[:8]}", [topic])
    await consumer.start()
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while not wanted(found):
            if time.monotonic() > deadline:
                pytest.fail(f"events not seen within {timeout:.0f}s: {[e['type'] for e in found]}")
            for message in await consumer.poll(max_records=500, timeout=0.5):
                found.append(json.loads(message.value))
    finally:
        await consumer.stop()
        await bus.stop()
    return found


@dataclass
class DeclarationService:
    client: object
    runtime: object
    bus_url: str
    namespace: str
    venues: dict[str, TestVenue]
    settings: object
    extra: dict = field(default_factory=dict)

    async def announce(self, *events) -> None:  # noqa: ANN002
        await publish(self.bus_url, self.namespace, *events)


@contextlib.asynccontextmanager
async def running_declaration(settings, venues: dict[str, TestVenue]) -> AsyncIterator[DeclarationService]:
    async with run_services({"declaration": settings}) as system:
        service = DeclarationService(system["declaration"], system.runtime("declaration"), settings.bus_url,
                                     settings.bus_namespace, venues, settings)
        await service.announce(*(v.created() for v in venues.values()))
        for venue in venues.values():
            async def known(code=venue.code):
                return (await service.client.get(f"/api/venues/{code}")).status_code == 200

            await eventually(known, timeout=60, what=f"venue {venue.code} copied")
        yield service


@pytest.fixture
async def declaration_app(make_settings) -> AsyncIterator[DeclarationService]:
    """The declaration service on SQLite and the embedded bus, with three venues."""
    settings = make_settings("declaration", cache_seconds=0)
    async with running_declaration(settings, make_venues()) as service:
        yield service


@pytest.fixture
async def declaration_on(backend, keys) -> AsyncIterator[DeclarationService]:
    """The declaration service on the backend of the test (embedded or PostgreSQL + Kafka)."""
    settings = build_settings("declaration", keys, database_url=await backend.database_url("declaration"),
                              bus_url=backend.bus_url, bus_namespace=backend.bus_options().get("namespace", ""),
                              kafka_partitions=2, cache_seconds=0)
    async with running_declaration(settings, make_venues()) as service:
        yield service


def person(**overrides) -> dict:  # noqa: ANN003
    body = {"full_name": "Nguyễn Văn An", "id_number": "079099012345", "birth": "01/02/1990", "gender": "male",
            "phone": "0909 123 456", "province_code": "79", "district_code": "787", "commune_code": "27664",
            "street": "12 Lương Văn Nho", "symptoms": [], "exposures": []}
    body.update(overrides)
    return body


def declaration(code: str, *people: dict, key: str | None = None, **overrides) -> dict:  # noqa: ANN003
    body = {"venue_code": code, "people": list(people) or [person()], "consent": True,
            "idempotency_key": key or uuid.uuid4().hex}
    body.update(overrides)
    return body

