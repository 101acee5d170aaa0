"""Migration 1702 of declaration (personal fields encrypted at rest): a declaration stored
in clear before it keeps reading through the service's types (the birth date too, now a
text column), and ``reseal`` seals it and fills its blind indexes, after which the lookup by
ID number finds it. SQLite and PostgreSQL."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, String, Table, Uuid, select, text

from libs.common import migrate
from libs.common.db import Database
from libs.common.reseal import reseal, sealed_tables, service_metadata
from services.declaration import app as declaration_app
from services.declaration.models import Declaration

MIGRATIONS = Path(declaration_app.__file__).parent / "migrations"
old = MetaData()
declarations = Table(  # the columns of revision 0004 a row needs
    "declarations", old,
    Column("id", Uuid(), primary_key=True), Column("submission_id", Uuid()), Column("member", Integer()),
    Column("venue_id", Uuid()), Column("venue_code", String(20)), Column("unit_id", Uuid()),
    Column("commune_path", String(60)), Column("submitted_at", DateTime(timezone=True)),
    Column("valid_until", DateTime(timezone=True)), Column("channel", String(8)), Column("full_name", String(100)),
    Column("id_number", String(20)), Column("birth_date", Date()), Column("birth_year", Integer()),
    Column("gender", String(8)), Column("nationality", String(60)), Column("phone", String(15)),
    Column("province_code", String(10)), Column("district_code", String(10)), Column("commune_code", String(10)),
    Column("street", String(200)), Column("symptoms", String(200)), Column("exposures", String(200)),
    Column("result", String(8)), Column("reasons", String(300)), Column("rule_version", String(40)),
)


async def test_a_row_stored_in_clear_reads_and_is_resealed(backend, field_ring):
    database = Database(await backend.database_url("declaration"))
    try:
        await migrate.upgrade(database, MIGRATIONS, "declaration", "0004")
        now = datetime.now(UTC)
        row_id = uuid.uuid4()
        async with database.transaction() as session:
            await session.execute(declarations.insert(), [{
                "id": row_id, "submission_id": uuid.uuid4(), "member": 0, "venue_id": uuid.uuid4(),
                "venue_code": "CT7K2M9Q", "unit_id": uuid.uuid4(), "commune_path": "79/787/27664",
                "submitted_at": now, "valid_until": now, "channel": "self", "full_name": "Đỗ Thị Cũ",
                "id_number": "079301007777", "birth_date": date(1990, 2, 1), "birth_year": 1990, "gender": "female",
                "nationality": "VN", "phone": "0911222333", "province_code": "79", "district_code": "787",
                "commune_code": "27664", "street": "1 Duyên Hải", "symptoms": "", "exposures": "", "result": "green",
                "reasons": "", "rule_version": "v1"}])
        await migrate.upgrade(database, MIGRATIONS, "declaration")

        async with database.transaction(readonly=True) as session:
            kept = await session.get(Declaration, row_id)
        assert (kept.full_name, kept.id_number, kept.birth_date) == ("Đỗ Thị Cũ", "079301007777", date(1990, 2, 1))
        assert kept.id_number_index is None  # until resealed

        done = await reseal(database, field_ring, sealed_tables(service_metadata("declaration")), echo=lambda _: None)
        assert done == {"declarations": 1, "suspected_cases": 0}
        async with database.transaction(readonly=True) as session:
            raw = (await session.execute(text("SELECT full_name, birth_date, phone FROM declarations"))).one()
            found = (await session.execute(select(Declaration).where(
                Declaration.id_number_index == field_ring.index("079301007777", "id_number")))).scalars().all()
        assert all(value.startswith("f1.") for value in raw)
        assert [(d.id, d.birth_date, d.phone) for d in found] == [(row_id, date(1990, 2, 1), "0911222333")]
    finally:
        await database.dispose()
