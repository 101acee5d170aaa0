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

import pytest

from libs.common.auth import Role
from tests.reliability.flows import backend_settings, demo_venue, first_alert
from tests.services.conftest import run_services

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
    settings = await backend_settings(backend, keys)

    async with run_services(settings) as system:
        officer = mint.headers(Role.HEALTH_OFFICER, "79/787")
        code = (await demo_venue(system, mint))["code"]
        body = {"venue_code": code, "consent": True, "idempotency_key": uuid.uuid4().hex, "people": [{
            "full_name": NAME, "id_number": ID_NUMBER, "birth": BIRTH, "gender": "female", "phone": "0913 222 444",
            "nationality": "Việt Nam", "province_code": "79", "district_code": "787", "commune_code": "27664",
            "street": STREET, "symptoms": ["fever", "cough"], "symptom_other": SYMPTOM_TEXT, "exposures": []}]}
        declared = await system["declaration"].post("/api/declarations", json=body)
        assert declared.status_code == 201, declared.text
        assert declared.json()["declarations"][0]["result"] == "red"

        alert = await first_alert(system, officer)
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


# --- the event contract ---------------------------------------------------------------------

def _flagged_event(seal_to: bytes, declaration_id: uuid.UUID | None = None):  # noqa: ANN202
    from datetime import UTC, datetime

    from libs.common.events.declaration import (
        DeclarationFlagged, DeclarationFlaggedData, PersonDetails, SensitiveDetails, VenueRef, seal_person,
    )

    declaration_id = declaration_id or uuid.uuid4()
    venue = VenueRef(venue_id=uuid.uuid4(), venue_code="CT7K2M9Q", venue_name="Cổng chợ", unit_id=uuid.uuid4(),
                     unit_name="Chợ Cần Thạnh", address="12 Lương Văn Nho", commune_path="79/787/27664")
    details = SensitiveDetails(person=PersonDetails(full_name=NAME, id_number=ID_NUMBER, street=STREET),
                               symptoms=["fever", "cough"], symptom_other=SYMPTOM_TEXT)
    return DeclarationFlagged(producer="declaration", jurisdiction=venue.commune_path, data=DeclarationFlaggedData(
        declaration_id=declaration_id, submission_id=uuid.uuid4(), venue=venue, commune_path=venue.commune_path,
        submitted_at=datetime.now(UTC), result="red", reasons=["fever_with_respiratory_sign"], rule_version="2021-06",
        sealed_person=seal_person(seal_to, details, "declaration.flagged", declaration_id)))


def test_reporting_gets_only_ids_venue_time_and_result_in_clear():
    """What any reader of the topic sees of a flagged declaration: no more than an exposure
    query returns (reporting has name and phone from declaration.submitted; here not even those)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from libs.common import sealed

    event = _flagged_event(sealed.raw_public(X25519PrivateKey.generate().public_key()))
    data = json.loads(event.to_bytes())["data"]
    assert set(data) == {"declaration_id", "submission_id", "venue", "commune_path", "submitted_at", "result",
                         "reasons", "rule_version", "channel", "sealed_person"}
    assert json.loads(event.to_bytes())["version"] == 2
    assert _found_in(event.to_bytes()) == []


def test_notification_opens_with_the_current_or_previous_key_and_never_a_moved_box():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from libs.common import sealed
    from libs.common.events import parse_event
    from services.notification.alerts import SealedPersonError, open_person

    old, new = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    before_rotation = parse_event(_flagged_event(sealed.raw_public(old.public_key())).to_bytes())
    # After `khaibao keys rotate credentials`: the current key, then the previous one.
    assert open_person(before_rotation, [new, old]).person.id_number == ID_NUMBER
    assert open_person(before_rotation, [new, old]).symptom_other == SYMPTOM_TEXT
    with pytest.raises(SealedPersonError):
        open_person(before_rotation, [new])  # the previous key not given: refused, never guessed
    # A box copied into another declaration's event does not open (its context names the declaration).
    other = _flagged_event(sealed.raw_public(new.public_key()))
    moved = other.model_copy(update={"data": other.data.model_copy(
        update={"sealed_person": before_rotation.data.sealed_person})})
    with pytest.raises(SealedPersonError):
        open_person(moved, [new, old])


def test_a_version_1_event_met_during_a_rolling_upgrade_is_still_handled():
    """A flagged declaration written before the upgrade (details in clear) is brought up to
    version 2 with its details in ``clear``: notification raises its alert from them,
    reporting counts it as before."""
    from libs.common.events import parse_event
    from services.notification.alerts import open_person

    declaration_id = uuid.uuid4()
    v1 = {"id": str(uuid.uuid4()), "type": "declaration.flagged", "version": 1, "occurred_at": "2026-12-07T08:00:00Z",
          "producer": "declaration", "trace_id": "t", "jurisdiction": "79/787/27664", "data": {
              "declaration_id": str(declaration_id), "submission_id": str(uuid.uuid4()), "venue": {
                  "venue_id": str(uuid.uuid4()), "venue_code": "CT7K2M9Q", "venue_name": "Cổng chợ",
                  "unit_id": str(uuid.uuid4()), "unit_name": "Chợ", "address": "12 Lương Văn Nho",
                  "commune_path": "79/787/27664"},
              "commune_path": "79/787/27664", "submitted_at": "2026-12-07T08:00:00Z", "result": "red",
              "reasons": ["fever_with_respiratory_sign"], "rule_version": "2021-06", "channel": "self",
              "symptoms": ["fever", "cough"], "symptom_other": None, "exposures": [],
              "person": {"full_name": NAME, "id_number": ID_NUMBER}}}
    event = parse_event(json.dumps(v1).encode())
    assert event.version == 2 and event.data.sealed_person is None
    details = open_person(event, [])
    assert details.person.id_number == ID_NUMBER and details.symptoms == ["fever", "cough"]
    assert event.data.venue.unit_id and event.data.submitted_at  # what reporting's projection reads
