"""Issue 17, item 1: the bus carries personal data sealed.

The whole flow on the five real services (SQLite + the embedded bus, PostgreSQL + Kafka):
a demo venue reaches declaration; a person declares with a red result (fever and cough,
a symptom written out by hand); notification raises the alert. Then the RAW topics are
read as any holder of the bus could:

- embedded: every message row of the bus file (its ``value`` bytes), and after the
  services stopped the bytes of the bus file and its write-ahead log;
- Kafka: every topic of the system consumed from the beginning by a fresh consumer group.

No ID number, birth date, street or symptom (a code of the form or the hand-written text)
may be found in clear, while the alert the health officer opens still shows them (opened
by notification with its private key).
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from libs.common.auth import Role
from libs.common.settings import SERVICES
from tests.services.conftest import build_settings, eventually, run_services

NAME = "Trần Thị Bích Ngọc"
ID_NUMBER = "079302007788"
BIRTH = "17/09/1993"
STREET = "88 Lương Văn Nho"
SYMPTOM_TEXT = "Ớn lạnh về đêm"
HTML = {"accept": "text/html"}


def _needles() -> dict[str, list[bytes]]:
    """What must not travel in clear, in the forms it can take in a message."""
    def forms(text: str) -> list[bytes]:
        return [text.encode(), json.dumps(text)[1:-1].encode()]

    return {
        "ID number": forms(ID_NUMBER),
        "birth date": [b"1993-09-17", BIRTH.encode()],
        "street": forms(STREET),
        # The form's codes as they appear in a list (the rule ids in ``reasons``, such as
        # ``fever_with_respiratory_sign``, name the screening outcome, not the answers).
        "symptom": [b'"fever"', b'"cough"', b"cough", *forms(SYMPTOM_TEXT)],
        "nationality": [b'"nationality"'],
    }


def _found_in(data: bytes) -> list[str]:
    return [what for what, forms in _needles().items() if any(form in data for form in forms)]


def _embedded_messages(bus_file: Path) -> list[tuple[str, bytes]]:
    import sqlite3

    conn = sqlite3.connect(bus_file)
    try:
        return [(topic, bytes(value)) for topic, value in conn.execute("SELECT topic, value FROM bus_messages")]
    finally:
        conn.close()


async def _kafka_messages(bootstrap: str, namespace: str) -> list[tuple[str, bytes]]:
    """Every message of the system's topics, read from the beginning by a fresh group."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if t.startswith(namespace))
    finally:
        await admin.close()
    assert topics, "the flow created its topics"
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=f"raw-reader-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    messages: list[tuple[str, bytes]] = []
    try:
        quiet = 0
        while quiet < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            got = [(record.topic, record.value or b"") for records in batch.values() for record in records]
            messages.extend(got)
            quiet = 0 if got else quiet + 1
    finally:
        await consumer.stop()
    return messages


async def test_the_raw_bus_holds_no_personal_detail_in_clear(backend, keys, mint):
    namespace = backend.bus_options().get("namespace", "")
    settings = {service: build_settings(
        service, keys, database_url=await backend.database_url(service), bus_url=backend.bus_url,
        bus_namespace=namespace, kafka_partitions=2, demo=service == "provisioning") for service in SERVICES}

    async with run_services(settings) as system:
        officer = mint.headers(Role.HEALTH_OFFICER, "79/787")
        venues = (await system["provisioning"].get("/api/venues", headers=mint.headers(Role.CITY_DIC, "79"))).json()
        code = venues[0]["code"]

        async def venue_known():
            return (await system["declaration"].get(f"/api/venues/{code}")).status_code == 200

        await eventually(venue_known, timeout=60, what="the demo venue in declaration")
        body = {"venue_code": code, "consent": True, "idempotency_key": uuid.uuid4().hex, "people": [{
            "full_name": NAME, "id_number": ID_NUMBER, "birth": BIRTH, "gender": "female", "phone": "0913 222 444",
            "nationality": "Việt Nam", "province_code": "79", "district_code": "787", "commune_code": "27664",
            "street": STREET, "symptoms": ["fever", "cough"], "symptom_other": SYMPTOM_TEXT, "exposures": []}]}
        declared = await system["declaration"].post("/api/declarations", json=body)
        assert declared.status_code == 201, declared.text
        assert declared.json()["declarations"][0]["result"] == "red"

        async def alerted():
            response = await system["notification"].get("/api/alerts", headers=officer)
            return response.status_code == 200 and response.json()

        alert = (await eventually(alerted, timeout=60, what="the alert"))[0]
        # The health officer still sees who the person is and what they declared.
        page = await system["notification"].get(f"/alerts/{alert['id']}", headers={**HTML, **officer})
        assert page.status_code == 200
        for shown in (NAME, ID_NUMBER, BIRTH, STREET, SYMPTOM_TEXT):
            assert shown in page.text, shown

        if backend.name == "embedded":
            messages = _embedded_messages(Path(backend.bus_url.removeprefix("embedded://")))
        else:
            messages = await _kafka_messages(backend.bus_url.removeprefix("kafka://"), namespace)
        flagged = [value for _topic, value in messages if b'"declaration.flagged"' in value]
        assert len(flagged) == 1, "the flow's red declaration is on the bus"
        found = {f"{topic}: {json.loads(value).get('type')}": _found_in(value)
                 for topic, value in messages if _found_in(value)}
        assert found == {}
    if backend.name == "embedded":  # stopped: the bus file and its log as an operator would copy them
        bus_file = Path(backend.bus_url.removeprefix("embedded://"))
        for path in (bus_file, bus_file.with_name(bus_file.name + "-wal")):
            if path.exists():
                assert _found_in(path.read_bytes()) == [], path.name
