"""Issue 17, item 2: a copied backup or a stolen disk does not read like a phone book.

The whole flow on the five real services (SQLite + the embedded bus, PostgreSQL + Kafka):
a person declares with an ID number and phone (green), again with fever and cough (red: an
alert), and gate staff raise a suspected case with the person's details. Then the raw
storage is read, without the services' keys:

- every table and every column of each checked service's database, as plain SQL gives it
  (a reflected schema: no column type of the service opens anything);
- on SQLite, the bytes of each checked service's database file and its write-ahead log,
  while the services run and again once they stopped (checkpointed, as an operator would
  copy them).

The person's ID number, phone and name are found nowhere in clear. And through the
services (their keys): the subject lookup finds the person by ID number and by phone, and
the suspected case is on the gate page.

``CHECKED_SERVICES``: the services whose storage holds no personal datum in clear: all
five. Intake and provisioning never receive the person's data; declaration, reporting
(visits) and notification (alerts) encrypt their copies.
"""
from __future__ import annotations

import asyncio
import os
import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from libs.common import migrate
from libs.common.auth import SESSION_COOKIE, Role
from libs.common.cli import main
from libs.common.db import Database
from libs.common.fieldcrypt import register
from services.declaration.app import HERE as DECLARATION_DIR
from services.declaration.models import Declaration

from .conftest import DEMO_DISTRICT, build_settings, eventually, run_services
from .flows import backend_settings, demo_venue
from .test_retention_everywhere import ID_NUMBER, NAME, PHONE, _found_in, _search_database

CHECKED_SERVICES = ("intake", "provisioning", "declaration", "notification", "reporting")
MIGRATIONS = DECLARATION_DIR / "migrations"
HTML = {"accept": "text/html"}
REQUEST = {"reference": "YC-2026-0102", "reason": "Người dân yêu cầu bản sao dữ liệu khai báo"}


def _person(**overrides) -> dict:  # noqa: ANN003
    return {"full_name": NAME, "id_number": ID_NUMBER, "birth": "03/04/2001", "gender": "female", "phone": PHONE,
            "province_code": "79", "district_code": "787", "commune_code": "27664", "street": "45 Duyên Hải",
            "symptoms": [], "exposures": [], **overrides}


def _sqlite_files(folder: Path, service: str) -> dict[str, list[str]]:
    """The raw bytes of the service's SQLite database and its write-ahead log."""
    found = {}
    for path in (folder / f"{service}.db", folder / f"{service}.db-wal"):
        if path.is_file():
            hits = _found_in(path.read_bytes())
            if hits:
                found[path.name] = hits
    return found


async def test_the_raw_storage_holds_no_personal_datum_in_clear(backend, keys, mint, tmp_path):
    settings = await backend_settings(backend, keys)
    async with run_services(settings) as system:
        officer = mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT)
        venue = await demo_venue(system, mint)
        code = venue["code"]
        for people in ([_person()], [_person(symptoms=["fever", "cough"])]):
            declared = await system["declaration"].post("/api/declarations", json={
                "venue_code": code, "consent": True, "idempotency_key": uuid.uuid4().hex, "people": people})
            assert declared.status_code == 201, declared.text
        assert declared.json()["declarations"][0]["result"] == "red"

        # Gate staff of the venue's unit raise a suspected case with the person's details.
        staff = {**HTML, "cookie": f"{SESSION_COOKIE}=" + mint.token(
            Role.GATE_STAFF, venue["commune_path"], unit_id=str(venue["unit_id"]))}
        form = await system["declaration"].get(f"/gate/{venue['id']}/case", headers=staff)
        assert form.status_code == 200, form.text[:300]
        token = re.search(r'name="csrf_token" value="([^"]*)"', form.text).group(1)
        raised = await system["declaration"].post(f"/gate/{venue['id']}/case", headers=staff, data={
            "csrf_token": token, "full_name": NAME, "phone": PHONE, "id_number": ID_NUMBER, "symptoms": ["fever"],
            "note": f"Ho nhiều, điện thoại {PHONE}"})
        assert raised.status_code == 303, raised.text[:500]
        gate = await system["declaration"].get(f"/gate/{venue['id']}", headers=staff)
        assert NAME in gate.text  # the gate page opens what it stored

        async def relayed():  # the events left declaration's outbox (the alert is raised)
            alerts = await system["notification"].get("/api/alerts", headers=officer)
            return alerts.status_code == 200 and alerts.json()

        await eventually(relayed, timeout=60, what="the alert")

        # Without the keys: nothing of the person in any table of the checked services.
        found = {s: await _search_database(system.runtime(s), opened=False) for s in CHECKED_SERVICES}
        assert {s: f for s, f in found.items() if f} == {}
        if backend.name == "embedded":
            assert {s: f for s in CHECKED_SERVICES if (f := _sqlite_files(tmp_path, s))} == {}

        # Through the service: found by ID number, by phone, by both.
        for given in ({"id_number": ID_NUMBER}, {"phone": PHONE}, {"id_number": ID_NUMBER, "phone": PHONE}):
            answer = await system["declaration"].post("/api/subject/search", headers=officer,
                                                     json={**REQUEST, **given})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["total"] == 2, given
            assert {(d["full_name"], d["id_number"], d["phone"]) for d in body["declarations"]} == {
                (NAME, ID_NUMBER, re.sub(r"\D", "", PHONE))}
        other = await system["declaration"].post("/api/subject/search", headers=officer,
                                                  json={**REQUEST, "phone": "0987 000 111"})
        assert other.json()["total"] == 0
    if backend.name == "embedded":  # stopped: checkpointed, the files an operator would copy
        assert {s: f for s in CHECKED_SERVICES if (f := _sqlite_files(tmp_path, s))} == {}


# --- rotation, reseal, a wrong key ---------------------------------------------------------

def _declaration(number: str, **values) -> Declaration:  # noqa: ANN003
    now = datetime.now(UTC)
    return Declaration(**{
        "id": uuid.uuid4(), "submission_id": uuid.uuid4(), "venue_id": uuid.uuid4(), "venue_code": "CT7K2M9Q",
        "unit_id": uuid.uuid4(), "commune_path": "79/787/27664", "submitted_at": now, "valid_until": now,
        "channel": "self", "full_name": NAME, "id_number": number, "birth_date": date(2001, 4, 3), "birth_year": 2001,
        "gender": "female", "nationality": "VN", "phone": re.sub(r"\D", "", PHONE), "province_code": "79",
        "district_code": "787", "commune_code": "27664", "street": "45 Duyên Hải", "result": "green",
        "rule_version": "v1", **values})


async def _stored(database: Database) -> list[dict]:
    """The declarations as stored (plain SQL: no key opens anything)."""
    async with database.transaction(readonly=True) as session:
        rows = await session.execute(text("SELECT id, full_name, id_number, phone, birth_date, street, "
                                          "id_number_index, phone_index FROM declarations ORDER BY id"))
        return [dict(r) for r in rows.mappings()]


async def test_rotation_then_reseal_then_the_old_key_dropped(backend, keys, monkeypatch, capsys):
    """Rows sealed under key A and rows stored in clear before encryption; ``keys rotate
    field`` puts B first: the old rows still open, new rows are sealed under B; ``keys reseal``
    rewrites the others under B and fills their blind indexes; with A dropped every row
    opens, and the lookup by ID number finds the clear row's person too."""
    secrets = keys.data_dir / "secrets"
    secrets.mkdir()
    (secrets / "field_keys").write_text(os.urandom(32).hex() + "\n")
    (secrets / "index_key").write_text(os.urandom(32).hex() + "\n")
    url = await backend.database_url("declaration")
    settings = build_settings("declaration", keys, database_url=url, field_keys_file=secrets / "field_keys",
                              index_key_file=secrets / "index_key")
    database = Database(url)
    try:
        await migrate.upgrade(database, MIGRATIONS, "declaration")
        key_a = settings.field_ring()
        register("declaration", key_a)
        async with database.transaction() as session:
            session.add_all([_declaration("079301000001"), _declaration("079301000002")])
        # A row stored before encryption existed: clear values, no index.
        legacy = _declaration("079301000003")
        async with database.transaction() as session:
            await session.execute(text(
                "INSERT INTO declarations (id, submission_id, member, venue_id, venue_code, unit_id, commune_path, "
                "submitted_at, valid_until, channel, full_name, id_number, birth_date, birth_year, gender, "
                "nationality, phone, province_code, district_code, commune_code, street, symptoms, exposures, "
                "result, reasons, rule_version) VALUES (:id, :sid, 0, :vid, 'CT7K2M9Q', :uid, '79/787/27664', "
                ":at, :at, 'self', :name, :number, '2001-04-03', 2001, 'female', 'VN', :phone, '79', '787', "
                "'27664', '45 Duyên Hải', '', '', 'green', '', 'v1')"),
                {"id": legacy.id if not database.sqlite else legacy.id.hex, "sid": legacy.submission_id
                 if not database.sqlite else legacy.submission_id.hex,
                 "vid": legacy.venue_id if not database.sqlite else legacy.venue_id.hex,
                 "uid": legacy.unit_id if not database.sqlite else legacy.unit_id.hex,
                 "at": legacy.submitted_at if not database.sqlite else legacy.submitted_at.replace(tzinfo=None)
                 .isoformat(" "), "name": NAME, "number": "079301000003", "phone": legacy.phone})
        before = await _stored(database)
        assert sum(r["full_name"] == NAME for r in before) == 1  # the clear row
        assert all(r["full_name"].startswith("f1." + key_a.current_id) for r in before if r["full_name"] != NAME)

        # Rotation: B first, A below it.
        assert main(["keys", "rotate", "field", str(secrets)]) == 0
        rotated = settings.field_ring()
        assert rotated.current_id != key_a.current_id
        register("declaration", rotated)
        async with database.transaction() as session:
            session.add(_declaration("079301000004"))
        async with database.transaction(readonly=True) as session:
            opened = (await session.execute(select(Declaration))).scalars().all()
        assert {d.full_name for d in opened} == {NAME} and {d.birth_date for d in opened} == {date(2001, 4, 3)}

        # Reseal, as the operator runs it (the service's settings from the environment).
        for name, value in {"KHAIBAO_ENVIRONMENT": "test", "KHAIBAO_DATA_DIR": str(keys.data_dir),
                            "KHAIBAO_DECLARATION_DATABASE_URL": url,
                            "KHAIBAO_FIELD_KEYS_FILE": str(secrets / "field_keys"),
                            "KHAIBAO_INDEX_KEY_FILE": str(secrets / "index_key")}.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        assert await asyncio.to_thread(main, ["keys", "reseal", "declaration", "--batch", "2"]) == 0
        out = capsys.readouterr().out
        assert "declarations: done, 4 rows, 3 rewritten" in out, out  # A's two and the clear one
        assert NAME not in out and "079301000003" not in out
        assert await asyncio.to_thread(main, ["keys", "reseal", "declaration"]) == 0  # again: nothing left to do
        assert "declarations: done, 4 rows, 0 rewritten" in capsys.readouterr().out

        # A dropped: only B in the file; every row opens, the clear row's person is found by index.
        (secrets / "field_keys").write_text((secrets / "field_keys").read_text().splitlines()[0] + "\n")
        only_b = settings.field_ring()
        assert only_b.keys == [rotated.keys[0]]
        register("declaration", only_b)
        stored = await _stored(database)
        assert all(r["full_name"].startswith("f1." + only_b.current_id) for r in stored)
        assert all(NAME not in str(r.values()) for r in stored)
        async with database.transaction(readonly=True) as session:
            opened = (await session.execute(select(Declaration))).scalars().all()
            found = (await session.execute(select(Declaration).where(
                Declaration.id_number_index == only_b.index("079301000003", "id_number")))).scalars().all()
        assert sorted(d.id_number for d in opened) == [f"07930100000{i}" for i in range(1, 5)]
        assert [d.id for d in found] == [legacy.id]
        assert {d.phone_index for d in opened} == {only_b.index(re.sub(r"\D", "", PHONE), "phone")}
    finally:
        await database.dispose()


async def test_the_service_refuses_to_start_with_keys_that_do_not_open_its_data(backend, keys, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "field_keys").write_text(os.urandom(32).hex() + "\n")
    (secrets / "index_key").write_text(os.urandom(32).hex() + "\n")
    options = {"database_url": await backend.database_url("declaration"), "bus_url": backend.bus_url,
               "bus_namespace": backend.bus_options().get("namespace", ""), "kafka_partitions": 2,
               "field_keys_file": secrets / "field_keys", "index_key_file": secrets / "index_key"}
    database = Database(options["database_url"])
    try:
        await migrate.upgrade(database, MIGRATIONS, "declaration")
        register("declaration", build_settings("declaration", keys, **options).field_ring())
        async with database.transaction() as session:
            session.add(_declaration("079301000009"))
    finally:
        await database.dispose()
    # The file replaced by another key (the old one lost, or another deployment's file).
    right_keys = (secrets / "field_keys").read_text()
    (secrets / "field_keys").write_text(os.urandom(32).hex() + "\n")
    with pytest.raises(RuntimeError) as refused:
        async with run_services({"declaration": build_settings("declaration", keys, **options)}):
            pass
    message = str(refused.value)
    assert message.startswith("KHAIBAO_FIELD_KEYS_FILE: the field keys do not open the personal data stored")
    assert "declarations.full_name: sealed with key" in message and NAME not in message
    # The field keys right but another index key: the lookups would find nobody; refused too.
    (secrets / "field_keys").write_text(right_keys)
    (secrets / "index_key").write_text(os.urandom(32).hex() + "\n")
    with pytest.raises(RuntimeError) as refused:
        async with run_services({"declaration": build_settings("declaration", keys, **options)}):
            pass
    assert str(refused.value).startswith("KHAIBAO_INDEX_KEY_FILE: the index key is not the one the stored lookups")
    assert "declarations.id_number_index" in str(refused.value)
