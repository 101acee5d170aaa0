"""Issue 17, item 2: personal fields encrypted at rest in reporting and notification.

The whole flow on the five real services (SQLite + the embedded bus, PostgreSQL + Kafka):
a demo venue reaches declaration; a person declares with a red result, then twice more (the
same ID number with another phone, the same phone with another ID number), and a second
person declares green. Reporting keeps the visits (name and phone, for the exposure query),
notification raises the alert and counts the repeats in it. Then each service's RAW storage
is read as a thief holding a copied disk or backup would:

- SQLite: the bytes of the database file and of its write-ahead log, while the services run
  and again after they stopped;
- PostgreSQL: every row of every table of the service's database as text, by plain SQL.

No ID number, phone or name may be found in clear, while the exposure query still returns
the right people with their names and phones, the alert's page still shows the person, and
the repeats are still recognised (by the keyed blind index of the phone and of the ID number).
"""
from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from libs.common.auth import Role
from tests.reliability.flows import backend_settings, demo_venue
from tests.services.conftest import build_settings, eventually, run_services

NAME = "Trần Thị Bích Ngọc"
ID_NUMBER = "079302007788"
OTHER_ID = "079193004455"
PHONE = "0913 222 444"
OTHER_PHONE = "0935 111 777"
GREEN_NAME = "Lê Hoàng Khoa"
GREEN_PHONE = "0987 654 321"
HTML = {"accept": "text/html"}
CHECKED = ("reporting", "notification")


def _needles() -> dict[str, list[bytes]]:
    """What must not lie in clear, in the forms it can take in storage (as typed, digits
    only, JSON-escaped, without diacritics)."""
    import json
    import unicodedata

    def forms(text: str) -> list[bytes]:
        folded = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
        folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
        return list(dict.fromkeys([text.encode(), json.dumps(text)[1:-1].encode(), folded.encode()]))

    def phone(text: str) -> list[bytes]:
        digits = "".join(ch for ch in text if ch.isdigit())
        return [text.encode(), digits.encode(), digits[1:].encode()]

    return {"name": forms(NAME), "green name": forms(GREEN_NAME), "ID number": forms(ID_NUMBER),
            "other ID number": forms(OTHER_ID), "phone": phone(PHONE), "other phone": phone(OTHER_PHONE),
            "green phone": phone(GREEN_PHONE)}


def _found_in(data: bytes) -> list[str]:
    return [what for what, forms in _needles().items() if any(form in data for form in forms)]


def _sqlite_files(url: str) -> list[Path]:
    path = Path(make_url(url).database)
    return [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]


async def _postgres_rows(url: str) -> dict[str, list[str]]:
    """Every row of every table of the database, as PostgreSQL writes a row out as text."""
    parsed = make_url(url)
    conn = await asyncpg.connect(user=parsed.username, password=parsed.password, host=parsed.host,
                                 port=parsed.port or 5432, database=parsed.database)
    try:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        return {table: [r[0] for r in await conn.fetch(f'SELECT CAST(t AS text) FROM public."{table}" t')]
                for table in tables}
    finally:
        await conn.close()


async def _found_in_storage(backend, settings) -> dict[str, list[str]]:  # noqa: ANN001
    found: dict[str, list[str]] = {}
    for service in CHECKED:
        url = settings[service].database_url
        if backend.name == "embedded":
            for path in _sqlite_files(url):
                if hits := _found_in(path.read_bytes()):
                    found[f"{service}: {path.name}"] = hits
        else:
            for table, rows in (await _postgres_rows(url)).items():
                hits = sorted({hit for row in rows for hit in _found_in(row.encode())})
                if hits:
                    found[f"{service}: {table}"] = hits
    return found


def _person(name: str, id_number: str, phone: str, *, red: bool) -> dict:
    return {"full_name": name, "id_number": id_number, "birth": "17/09/1993", "gender": "female", "phone": phone,
            "nationality": "Việt Nam", "province_code": "79", "district_code": "787", "commune_code": "27664",
            "street": "88 Lương Văn Nho", "symptoms": ["fever", "cough"] if red else [], "exposures": []}


async def test_reporting_and_notification_keep_no_id_phone_or_name_in_clear(backend, keys, mint):
    settings = await backend_settings(backend, keys)

    async with run_services(settings) as system:
        officer = mint.headers(Role.HEALTH_OFFICER, "79/787")
        code = (await demo_venue(system, mint))["code"]

        async def declare(person: dict) -> str:
            body = {"venue_code": code, "consent": True, "idempotency_key": uuid.uuid4().hex, "people": [person]}
            response = await system["declaration"].post("/api/declarations", json=body)
            assert response.status_code == 201, response.text
            return response.json()["declarations"][0]["id"]

        first = await declare(_person(NAME, ID_NUMBER, PHONE, red=True))

        async def alerted():
            response = await system["notification"].get("/api/alerts", headers=officer)
            return response.status_code == 200 and response.json()

        alert = (await eventually(alerted, timeout=60, what="the alert"))[0]
        # The same person again: the same ID number with another phone, the same phone with
        # another ID number. Both are recognised as a repeat and counted in the one alert.
        await declare(_person(NAME, ID_NUMBER, OTHER_PHONE, red=True))
        await declare(_person(NAME, OTHER_ID, PHONE, red=True))
        await declare(_person(GREEN_NAME, "079088001122", GREEN_PHONE, red=False))

        async def counted():
            listed = (await system["notification"].get("/api/alerts", headers=officer)).json()
            return listed if sum(a["declarations"] for a in listed) == 3 else None

        listed = await eventually(counted, timeout=60, what="the repeats counted")
        assert [(a["id"], a["declarations"]) for a in listed] == [(alert["id"], 3)]

        # The health officer still sees who the person is.
        page = await system["notification"].get(f"/alerts/{alert['id']}", headers={**HTML, **officer})
        assert page.status_code == 200
        for shown in (NAME, ID_NUMBER, OTHER_ID, PHONE.replace(" ", ""), OTHER_PHONE.replace(" ", "")):
            assert shown in page.text.replace(" ", "") if shown.isdigit() else shown in page.text, shown

        # The exposure query still returns the right people, with their names and phones.
        async def exposure():
            response = await system["reporting"].post("/api/exposure", headers=officer, json={
                "case_reference": "CA-2026-0017", "reason": "Truy vết tiếp xúc của ca nghi nhiễm",
                "declaration_id": first})
            assert response.status_code == 200, response.text
            contacts = response.json()["contacts"]
            return contacts if len(contacts) == 4 else None

        contacts = await eventually(exposure, timeout=60, what="the four visits in reporting")
        digits = {c["full_name"]: "".join(ch for ch in c["phone"] if ch.isdigit()) for c in contacts}
        assert sorted((c["full_name"], "".join(ch for ch in c["phone"] if ch.isdigit())) for c in contacts) == sorted([
            (NAME, "0913222444"), (NAME, "0935111777"), (NAME, "0913222444"), (GREEN_NAME, "0987654321")]), digits
        assert [c["is_index"] for c in contacts].count(True) == 1

        # The case's own visits by phone (written another way): matched by the phone's blind
        # index, only within the caller's area, logged without the phone.
        lookup = {"case_reference": "CA-2026-0017", "reason": "Các nơi ca nghi nhiễm đã khai báo",
                  "phone": "+84 913-222-444"}
        own = await system["reporting"].post("/api/exposure/case-visits", headers=officer, json=lookup)
        assert own.status_code == 200, own.text
        assert own.json()["total"] == 2 and {v["full_name"] for v in own.json()["visits"]} == {NAME}
        assert {v["venue"]["code"] for v in own.json()["visits"]} == {code}
        assert first in {v["declaration_id"] for v in own.json()["visits"]}
        elsewhere = await system["reporting"].post("/api/exposure/case-visits", json=lookup,
                                                   headers=mint.headers(Role.HEALTH_OFFICER, "79/760"))
        assert elsewhere.status_code == 200 and elsewhere.json()["total"] == 0
        no_reason = await system["reporting"].post("/api/exposure/case-visits", headers=officer,
                                                   json={**lookup, "reason": ""})
        assert no_reason.status_code == 422
        log = (await system["reporting"].get("/api/access-log", headers=mint.headers(Role.CITY_DIC, "79"),
                                             params={"action": "exposure.case_visits"})).json()
        assert sorted((e["outcome"], e["detail"] or "", e["row_count"]) for e in log) == [
            ("ok", "", 0), ("ok", "", 2), ("refused", "no_reason", 0)]
        assert not _found_in(str(log).encode())

        assert await _found_in_storage(backend, settings) == {}
    if backend.name == "embedded":  # stopped: the files as an operator would copy them
        assert await _found_in_storage(backend, settings) == {}


@pytest.mark.parametrize("service", CHECKED)
def test_the_service_registers_its_key_ring_at_start(keys, service, monkeypatch):
    """Each service seals with its own ring, from its settings (derived from the secret key
    without key files): creating the app registers it."""
    from libs.common import fieldcrypt
    from tests.services.conftest import create_app

    monkeypatch.setattr(fieldcrypt, "_RINGS", dict(fieldcrypt._RINGS))  # the other tests' rings stay
    settings = build_settings(service, keys, secret_key="s" * 40)
    create_app(service, settings)
    ring = fieldcrypt.ring(service)
    assert ring.current_id == settings.field_ring().current_id


async def test_after_a_field_key_rotation_old_visits_open_and_new_ones_use_the_new_key(backend, monkeypatch):
    """``khaibao keys rotate field``: the new key first, the old one kept to open. The visits
    sealed before still open, the new ones are sealed with the new key, and the blind index
    (its key is not rotated) still finds both by phone."""
    import os
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from libs.common import fieldcrypt, migrate
    from libs.common.auth import Principal
    from libs.common.db import Database
    from services.reporting import directory, visits
    from services.reporting.case_visits import check_case_visits, find_case_visits
    from tests.reporting.conftest import MIGRATIONS, apply, submitted, venue_created

    monkeypatch.setattr(fieldcrypt, "_RINGS", dict(fieldcrypt._RINGS))  # the other tests' rings stay
    handlers = {**directory.HANDLERS, **visits.HANDLERS}
    old, new, index_key = os.urandom(32), os.urandom(32), os.urandom(32)
    database = Database(await backend.database_url("reporting"))
    try:
        await migrate.upgrade(database, MIGRATIONS, "reporting")
        now = datetime.now(UTC)
        market = venue_created(code="MARKET2345")
        fieldcrypt.register("reporting", fieldcrypt.KeyRing([old], index_key))
        await apply(database, handlers, market, submitted(market, at=now - timedelta(hours=2), name=NAME, phone=PHONE))
        fieldcrypt.register("reporting", fieldcrypt.KeyRing([new, old], index_key))  # rotated
        await apply(database, handlers, submitted(market, at=now - timedelta(hours=1), name=NAME, phone="+84913222444"))

        async with database.transaction() as session:
            raw = (await session.execute(text("SELECT full_name, phone FROM visits ORDER BY seq"))).all()
            assert [row.phone.split(".")[1] for row in raw] == [fieldcrypt.key_id(old), fieldcrypt.key_id(new)]
            assert not any(_found_in(f"{row.full_name} {row.phone}".encode()) for row in raw)
            officer = Principal(account_id="t", username="yte.test", name="Cán bộ y tế", role=Role.HEALTH_OFFICER,
                                jurisdiction="79/787")
            query = check_case_visits("CA-2026-0017", "Các nơi ca nghi nhiễm đã khai báo", "0913222444", "", "", now)
            found = await find_case_visits(session, officer, query)
        assert [(v.full_name, v.submitted_at) for v in found.visits] == [
            (NAME, now - timedelta(hours=2)), (NAME, now - timedelta(hours=1))]

        # Retention erases the index with the phone: the case's visits are found no more.
        from services.reporting.retention import erase_expired

        async with database.transaction() as session:
            assert await erase_expired(session, retention_days=21, now=now + timedelta(days=22)) == 2
            assert (await session.execute(text("SELECT count(*) FROM visits WHERE phone_index IS NOT NULL"
                                               " OR phone IS NOT NULL OR full_name IS NOT NULL"))).scalar_one() == 0
            assert (await find_case_visits(session, officer, query)).visits == []
    finally:
        await database.dispose()


async def test_rows_written_before_the_migration_keep_reading(backend, monkeypatch):
    """Migrations 1702 of reporting and notification only widen columns and add the index:
    a visit and an alert stored in clear before them read as they were (and a new write is sealed)."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Uuid, select, text

    from libs.common import fieldcrypt, migrate
    from libs.common.db import Database
    from services.notification import alerts as notification_alerts
    from services.notification.alert_models import Alert
    from services.notification.app import HERE as NOTIFICATION
    from services.reporting.visits import visits
    from tests.reporting.conftest import MIGRATIONS as REPORTING

    old = MetaData()
    old_visits = Table("visits", old, *(Column(n, Uuid()) for n in (
        "declaration_id", "submission_id", "venue_id", "unit_id")), *(Column(n, String()) for n in (
        "venue_code", "commune_path", "result", "reasons", "rule_version", "channel", "full_name", "phone")),
        Column("group_size", Integer()), Column("submitted_at", DateTime(timezone=True)),
        Column("received_at", DateTime(timezone=True)))
    old_alerts = Table("alerts", old, *(Column(n, Uuid()) for n in ("id", "source_id", "venue_id", "unit_id")),
                       *(Column(n, String()) for n in (
                           "source", "venue_code", "venue_name", "unit_name", "address", "commune_path",
                           "district_path", "channel", "reasons", "symptoms", "exposures", "initials", "person",
                           "status")),
                       Column("raised_at", DateTime(timezone=True)), Column("received_at", DateTime(timezone=True)))
    monkeypatch.setattr(fieldcrypt, "_RINGS", dict(fieldcrypt._RINGS))  # the other tests' rings stay
    for service in ("reporting", "notification"):
        fieldcrypt.register(service, fieldcrypt.derived_ring("s" * 40, service))
    now = datetime.now(UTC)
    person = f'{{"full_name": "{NAME}", "id_number": "{ID_NUMBER}", "phone": "{PHONE}"}}'

    reporting = Database(await backend.database_url("reporting"))
    notification = Database(await backend.database_url("notification"))
    try:
        await migrate.upgrade(reporting, REPORTING, "reporting", "1701")
        await migrate.upgrade(notification, NOTIFICATION / "migrations", "notification", "0301")
        async with reporting.transaction() as session:
            await session.execute(old_visits.insert().values(
                declaration_id=uuid4(), submission_id=uuid4(), venue_id=uuid4(), unit_id=uuid4(),
                venue_code="MARKET2345", commune_path="79/787/27664", result="green", reasons="[]",
                rule_version="2021-06", channel="self", full_name=NAME, phone=PHONE, group_size=1,
                submitted_at=now, received_at=now))
        alert_id = uuid4()
        async with notification.transaction() as session:
            await session.execute(old_alerts.insert().values(
                id=alert_id, source_id=uuid4(), venue_id=uuid4(), unit_id=uuid4(), source="flagged",
                venue_code="MARKET2345", venue_name="Cổng chợ", unit_name="Chợ", address="12 Lương Văn Nho",
                commune_path="79/787/27664", district_path="79/787", channel="self", reasons="[]",
                symptoms='["fever"]', exposures="[]", initials="T.T.B.N.", person=person, status="new",
                raised_at=now, received_at=now))
        await migrate.upgrade(reporting, REPORTING, "reporting")
        await migrate.upgrade(notification, NOTIFICATION / "migrations", "notification")

        async with reporting.transaction() as session:
            assert (await session.execute(select(visits.c.full_name, visits.c.phone))).one() == (NAME, PHONE)
            await session.execute(visits.update().values(phone=PHONE))  # written again: sealed
            assert _found_in((await session.execute(text("SELECT phone FROM visits"))).scalar_one().encode()) == []
        async with notification.transaction() as session:
            alert = await session.get(Alert, alert_id)
            seen = notification_alerts.person_of(alert)
            assert (seen.full_name, seen.id_number, seen.phone) == (NAME, ID_NUMBER, PHONE)
            assert alert.symptoms == '["fever"]'
    finally:
        await reporting.dispose()
        await notification.dispose()
