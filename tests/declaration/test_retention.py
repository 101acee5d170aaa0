"""Retention (issue 7): personal data of declarations erased after the configured period,
counts kept; idempotent, resumable in small batches; the clock is moved by injecting ``now``."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import func, select

from services.declaration.models import Declaration, RetentionCursor, Submission
from services.declaration.retention import erase_batch, erase_due, first_id_at
from services.declaration.service import count_today
from services.declaration.settings import DeclarationSettings
from services.declaration.web import RESULT_COOKIE, result_token

from .conftest import declaration, person
from .test_batcher import store  # noqa: F401 - fixture
from .test_gate import HTML, csrf, sign_in

PERSONAL = ("full_name", "id_type", "id_number", "birth_date", "gender", "nationality", "phone", "province_code",
            "district_code", "commune_code", "street", "symptoms", "symptom_other", "exposures", "vaccine_doses",
            "reasons")


async def rows(service) -> list[Declaration]:  # noqa: ANN001
    async with service.runtime.database.transaction(readonly=True) as session:
        return list((await session.execute(select(Declaration).order_by(Declaration.id))).scalars())


async def colours(service, venue, now: datetime) -> dict:  # noqa: ANN001
    async with service.runtime.database.transaction(readonly=True) as session:
        return await count_today(session, venue.venue_id, now)


async def test_personal_data_is_erased_after_the_period_and_counts_stay(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    family = declaration(venue.code, person(), person(full_name="Trần Thị Bé", id_number="079199012345",
                                                      phone="", symptoms=["fever", "cough"], exposures=["close_contact"],
                                                      symptom_other="đau đầu", vaccine_doses=2))
    sent = await service.client.post("/api/declarations", json=family)
    assert sent.status_code == 201, sent.text
    first = sent.json()
    alone = declaration(venue.code, person(full_name="Lê Văn Cường", id_number="079088012345"))
    assert (await service.client.post("/api/declarations", json=alone)).status_code == 201
    # Both counts are read for the day the declarations were made: a run across local midnight
    # would otherwise compare a day's counts with the (empty) next day's.
    database, now = service.runtime.database, datetime.now(UTC)
    before = await colours(service, venue, now)
    assert sum(before[c] for c in ("green", "yellow", "red")) == 3

    # Day 20: nothing is due yet.
    assert await erase_due(database, now=now + timedelta(days=20), days=21, batch=2) == 0
    assert all(r.erased_at is None and r.full_name for r in await rows(service))

    # Day 22, in batches of 2: the cursor moves, each batch is done once.
    later = now + timedelta(days=22)
    counted = REGISTRY.get_sample_value("khaibao_retention_erased_total", {"service": "declaration"}) or 0
    assert await erase_batch(database, now=later, days=21, batch=2) == 2
    assert REGISTRY.get_sample_value("khaibao_retention_erased_total", {"service": "declaration"}) == counted + 2
    stored = await rows(service)
    assert [r.erased_at is not None for r in stored] == [True, True, False]
    async with database.transaction(readonly=True) as session:
        cursor = await session.get(RetentionCursor, "declarations")
    assert cursor.erased_through == stored[1].id
    assert await erase_batch(database, now=later, days=21, batch=2) == 1
    assert await erase_batch(database, now=later, days=21, batch=2) == 0
    assert await erase_due(database, now=later, days=21, batch=2) == 0  # idempotent

    for row in await rows(service):
        assert row.erased_at is not None and row.birth_year == 0
        assert all(getattr(row, name) in ("", None) for name in PERSONAL), row
        assert row.venue_id == venue.venue_id and row.result in ("green", "yellow", "red") and row.rule_version
    assert await colours(service, venue, now) == before, "counts by colour are kept"
    async with database.transaction(readonly=True) as session:
        assert (await session.execute(select(func.count()).select_from(Submission))).scalar_one() == 0

    # The result page of an erased declaration is gone; the same form sent that late is new.
    submission = first["submission_id"]
    page = await service.client.get(f"/v/{venue.code}/done/{submission}", headers={
        **HTML, "cookie": f"{RESULT_COOKIE}={result_token(service.settings.secret_key, submission)}"})
    assert page.status_code == 404
    again = await service.client.post("/api/declarations", json=family)
    assert again.status_code == 201 and again.json()["submission_id"] != submission

    # A case raised from an erased declaration's QR code: stored, not completed with erased details.
    sign_in(service, mint)
    token = csrf((await service.client.get(f"/gate/{venue.venue_id}/case", headers=HTML)).text)
    report = {"csrf_token": token, "full_name": "Nguyễn Văn An", "symptoms": ["fever"],
              "declaration": first["declarations"][0]["qr"]}
    response = await service.client.post(f"/gate/{venue.venue_id}/case", data=report, headers=HTML)
    assert response.status_code == 303


def test_first_id_at_bounds_uuid7_ids():
    from services.declaration.declare import uuid7

    before = datetime.now(UTC) - timedelta(milliseconds=5)
    made = uuid7()
    assert first_id_at(before) < made < first_id_at(datetime.now(UTC) + timedelta(milliseconds=5))


def test_retention_must_outlast_a_pass(make_settings):
    with pytest.raises(ValidationError, match="RETENTION_DAYS"):
        DeclarationSettings(retention_days=0.5, pass_valid_hours=24)
    assert make_settings("declaration").retention_days == 21


async def test_erasing_on_both_databases(store):
    """The same batches on SQLite and PostgreSQL (uuid order, the cursor row, the submissions)."""
    from .test_batcher import committer_for, prepared

    database, url = store
    committer = committer_for(database, url)
    committer.start()
    try:
        work = [prepared(symptoms=["fever", "cough"] if i % 3 == 0 else []) for i in range(7)]
        for item in work:
            await committer.submit(item.submission, item.declarations, item.outbox)
    finally:
        await committer.stop()
    now = datetime.now(UTC)
    assert await erase_due(database, now=now + timedelta(days=21) - timedelta(minutes=1), days=21, batch=3) == 0
    assert await erase_batch(database, now=now + timedelta(days=22), days=21, batch=3) == 3
    assert await erase_due(database, now=now + timedelta(days=22), days=21, batch=3) == 4
    async with database.transaction(readonly=True) as session:
        stored = list((await session.execute(select(Declaration))).scalars())
        keys = (await session.execute(select(func.count()).select_from(Submission))).scalar_one()
    assert len(stored) == 7 and keys == 0
    assert all(r.erased_at is not None and r.full_name == "" and r.id_number is None for r in stored)
    assert sorted(r.result for r in stored) == sorted(d["result"] for w in work for d in w.declarations)
