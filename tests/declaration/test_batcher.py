"""Group commit on both databases (SQLite and PostgreSQL): many requests, one transaction,
each request answered only after the commit; duplicates, bad rows and outages handled."""
from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from libs.common import migrate, sealed
from libs.common.db import Database
from libs.common.events import parse_event
from libs.common.fieldcrypt import ring
from libs.common.outbox import open_payload, outbox
from services.declaration.batcher import GroupCommitter, Overloaded, RelayNudge, StoreUnavailable
from services.declaration.writers import DECLARATION_COLUMNS, SUBMISSION_COLUMNS, PostgresWriter, SqliteWriter, Work
from services.declaration.declare import prepare
from services.declaration.directory import VenueInfo
from services.declaration.models import Declaration, Submission
from services.declaration.passes import PassKeys
from services.declaration.schemas import DeclarationIn
from services.declaration.screening import DEFAULT_RULES, RuleBook

from .conftest import person

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "declaration" / "migrations"
VENUE = VenueInfo(uuid.uuid4(), "MAIN2345AB", uuid.uuid4(), "Chợ Cần Thạnh", "Cổng chính", "Lương Văn Nho",
                  "79/787/27664", True)
BOOK = RuleBook.parse(DEFAULT_RULES.read_text(encoding="utf-8"))
KEYS = PassKeys(Ed25519PrivateKey.generate())
SEAL_TO = sealed.raw_public(X25519PrivateKey.generate().public_key())  # notification's key


@pytest.fixture
async def store(backend):
    url = await backend.database_url("batcher")
    database = Database(url)
    await migrate.upgrade(database, MIGRATIONS, "declaration")
    yield database, url
    await database.dispose()


def committer_for(database: Database, url: str, **options) -> GroupCommitter:  # noqa: ANN003
    writers = [SqliteWriter(url, "NORMAL")] if database.sqlite else [PostgresWriter(url), PostgresWriter(url)]
    defaults = {"max_rows": 50, "max_pending": 10_000}
    return GroupCommitter(writers, **{**defaults, **options})


def prepared(key: str | None = None, **changes):  # noqa: ANN003, ANN202
    data = DeclarationIn.model_validate({"venue_code": VENUE.code, "people": [person(**changes)], "consent": True,
                                         "idempotency_key": key or uuid.uuid4().hex})
    return prepare(data, VENUE, BOOK, KEYS, now=datetime.now(UTC), valid_for=timedelta(hours=1), seal_to=SEAL_TO)


async def count(database: Database, table) -> int:  # noqa: ANN001
    async with database.transaction(readonly=True) as session:
        return (await session.execute(select(func.count()).select_from(table))).scalar_one()


def stored_by_result() -> dict[str, float]:
    return {r: REGISTRY.get_sample_value("khaibao_declarations_stored_total",
                                         {"service": "declaration", "result": r}) or 0.0
            for r in ("green", "yellow", "red")}


async def test_many_requests_share_few_transactions(store):
    database, url = store
    before = stored_by_result()
    woken = asyncio.Event()
    committer = committer_for(database, url, on_commit=RelayNudge(woken, every=100))
    committer.start()
    try:
        work = [prepared(symptoms=["fever", "cough"] if i % 5 == 0 else []) for i in range(300)]
        results = await asyncio.gather(*(committer.submit(p.submission, p.declarations, p.outbox) for p in work))
    finally:
        await committer.stop()
    assert results == [True] * 300
    assert committer.rows == 300 and committer.batches < 300 and woken.is_set()
    assert await count(database, Declaration) == 300 and await count(database, Submission) == 300
    async with database.transaction(readonly=True) as session:
        payloads = [row[0] for row in await session.execute(select(outbox.c.payload))]
        stored = await session.get(Declaration, work[0].declarations[0]["id"])
    events = [parse_event(open_payload(p)) for p in payloads]  # sealed at rest
    assert sum(e.type == "declaration.submitted" for e in events) == 300
    assert sum(e.type == "declaration.flagged" for e in events) == 60
    # Counted by screening result, once per commit.
    counted = {r: n - before[r] for r, n in stored_by_result().items()}
    assert counted["red"] == 60 and sum(counted.values()) == 300
    if database.sqlite:  # stored in the very text forms SQLAlchemy itself writes (ranges compare as text)
        async with database.transaction(readonly=True) as session:
            raw = (await session.execute(text("SELECT id, submitted_at, birth_date FROM declarations LIMIT 1"))).one()
        # The birth date is sealed (fieldcrypt), as its ISO text.
        assert re.fullmatch(r"[0-9a-f]{32}", raw[0]) and raw[2].startswith("f1.")
        assert ring("declaration").open(raw[2], "declarations.birth_date") == "1990-02-01"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", raw[1]), raw[1]
    # What the writer stored reads back through the ORM exactly as it was prepared.
    expected = work[0].declarations[0]
    assert stored.submitted_at.replace(tzinfo=UTC) == expected["submitted_at"]
    assert (stored.full_name, stored.result, stored.birth_year, stored.unit_id) == (
        expected["full_name"], "red", 1990, VENUE.unit_id)


async def test_under_load_a_writer_lingers_for_the_requests_on_their_way(store):
    """Under load (the last batch held several requests) a free writer waits ``linger`` so
    that the next commit carries more; a lone request (the last batch held one) waits for
    nothing."""
    database, url = store
    writer = SqliteWriter(url, "NORMAL") if database.sqlite else PostgresWriter(url)
    committer = GroupCommitter([writer], max_rows=50, max_pending=100, linger=0.5)
    committer.start()

    async def submit(p) -> bool:  # noqa: ANN001
        return await committer.submit(p.submission, p.declarations, p.outbox)

    async def two_apart() -> int:
        """Two requests 0.1 s apart: the number of commits they took."""
        before = committer.batches
        first = asyncio.create_task(submit(prepared()))
        await asyncio.sleep(0.1)
        assert await asyncio.gather(first, submit(prepared())) == [True, True]
        return committer.batches - before

    try:
        assert await submit(prepared()) is True  # alone: a batch of one
        assert committer.last_batch == 1
        assert await two_apart() == 2, "light load: the first was written at once, without waiting"
        assert await asyncio.gather(submit(prepared()), submit(prepared())) == [True, True]
        assert committer.last_batch == 2  # two at once: load
        assert await two_apart() == 1, "under load the writer waited, and one commit carried both"
    finally:
        await committer.stop()
    assert await count(database, Declaration) == 7 and await count(database, outbox) == 7


async def test_a_key_sent_twice_is_stored_once(store):
    database, url = store
    committer = committer_for(database, url)
    committer.start()
    try:
        first, same_batch, later = prepared("key-12345678"), prepared("key-12345678"), prepared("key-12345678")
        together = await asyncio.gather(committer.submit(first.submission, first.declarations, first.outbox),
                                        committer.submit(same_batch.submission, same_batch.declarations,
                                                         same_batch.outbox))
        assert sorted(together) == [False, True]
        assert await committer.submit(later.submission, later.declarations, later.outbox) is False
    finally:
        await committer.stop()
    assert await count(database, Declaration) == 1 and await count(database, outbox) == 1


async def test_one_bad_request_does_not_fail_the_others(store):
    database, url = store
    committer = committer_for(database, url)
    committer.start()
    try:
        good = [prepared() for _ in range(20)]
        bad = prepared()
        bad.declarations[0]["full_name"] = None  # violates NOT NULL: the whole batch fails once
        results = await asyncio.gather(*(committer.submit(p.submission, p.declarations, p.outbox)
                                         for p in [*good[:10], bad, *good[10:]]), return_exceptions=True)
    finally:
        await committer.stop()
    assert [r for r in results if r is not True] and all(isinstance(r, StoreUnavailable) for r in results
                                                          if r is not True)
    assert sum(r is True for r in results) == 20
    assert await count(database, Declaration) == 20 and await count(database, outbox) == 20


def work_of(p, key: str | None = None) -> Work:  # noqa: ANN001
    """What GroupCommitter.submit hands the PostgreSQL writer."""
    submission = {**p.submission, "key": key or p.submission["key"]}
    return Work(submission["key"], tuple(submission[c] for c in SUBMISSION_COLUMNS),
                PostgresWriter.encode_declarations(p.declarations), len(p.declarations), p.outbox,
                asyncio.get_running_loop().create_future())


@pytest.mark.parametrize("backend", ["kafka"], indirect=True)
async def test_the_postgres_statement_stores_new_keys_only_and_keeps_the_event_order(store):
    """PostgreSQL writes a batch in one statement: the new keys' rows and events (in the
    batch's order), nothing of a key stored before or repeated in the batch."""
    database, url = store
    writer = PostgresWriter(url)
    try:
        assert await writer.write([work_of(prepared("stored-before"))])
        group = DeclarationIn.model_validate({"venue_code": VENUE.code, "consent": True, "people": [
            person(), person(full_name="Trần Thị Bé", symptoms=["fever", "cough"]), person(full_name="Lê Văn Cư")]})
        family = prepare(group, VENUE, BOOK, KEYS, now=datetime.now(UTC), valid_for=timedelta(hours=1), seal_to=SEAL_TO)
        fresh = [work_of(prepared()), work_of(family), work_of(prepared(symptoms=["fever", "cough"]))]
        twice = work_of(prepared("same-key"))
        batch = [fresh[0], work_of(prepared("stored-before")), twice, fresh[1], work_of(prepared("same-key")),
                 fresh[2]]
        stored = await writer.write(batch)
    finally:
        await writer.close()
    assert stored == {id(w) for w in [*fresh, twice]}
    expected_events = [row[0] for w in batch if id(w) in stored for row in w.outbox]
    assert len(expected_events) == 1 + (3 + 1) + 2 + 1  # a red declaration has a second event
    async with database.transaction(readonly=True) as session:
        events = [r[0] for r in await session.execute(text("SELECT event_id FROM outbox ORDER BY id"))]
        names = {r[0] for r in await session.execute(text("SELECT full_name FROM declarations"))}
        kept = await session.get(Declaration, family.declarations[1]["id"])
    assert events[1:] == expected_events  # after the one stored before, in the batch's order
    assert await count(database, Declaration) == 1 + 1 + 3 + 1 + 1 and await count(database, Submission) == 5
    assert not {"Trần Thị Bé", "Lê Văn Cư"} & names  # sealed in the table, opened by the ring
    assert {"Trần Thị Bé", "Lê Văn Cư"} <= {ring("declaration").open(n, "declarations.full_name") for n in names}
    expected = family.declarations[1]
    assert (kept.submission_id, kept.member, kept.result) == (family.submission_id, 1, "red")

    def same(value):  # noqa: ANN001, ANN202 - times come back in UTC, naive or not
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value

    columns = [c for c in DECLARATION_COLUMNS if not c.endswith("_index")]  # the blind indexes: below
    assert {c: same(getattr(kept, c)) for c in columns} == {c: same(expected[c]) for c in columns}
    assert kept.id_number_index == ring("declaration").index(expected["id_number"], "id_number")
    assert kept.phone_index == ring("declaration").index(expected["phone"], "phone") is not None


async def test_a_database_that_is_away_answers_unavailable_and_stores_nothing(store, tmp_path):
    database, url = store
    if database.sqlite:
        broken = SqliteWriter(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    else:
        broken = PostgresWriter(url.replace(url.split("@")[1].split("/")[0], "127.0.0.1:1"))
    committer = GroupCommitter([broken], max_rows=50, max_pending=100)
    committer.start()
    try:
        work = [prepared() for _ in range(5)]
        results = await asyncio.gather(*(committer.submit(p.submission, p.declarations, p.outbox) for p in work),
                                       return_exceptions=True)
    finally:
        await committer.stop()
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert await count(database, Declaration) == 0


async def test_backpressure_and_a_clean_stop(store):
    database, url = store
    committer = committer_for(database, url, max_pending=2)
    first, second, third = prepared(), prepared(), prepared()
    waiting = [asyncio.create_task(committer.submit(p.submission, p.declarations, p.outbox)) for p in (first, second)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await committer.submit(third.submission, third.declarations, third.outbox)
    committer.start()  # the writers come up: the waiting requests are written
    assert await asyncio.gather(*waiting) == [True, True]
    await committer.stop()
    with pytest.raises(StoreUnavailable):
        await committer.submit(third.submission, third.declarations, third.outbox)
    async with database.transaction(readonly=True) as session:
        assert (await session.execute(text("SELECT count(*) FROM declarations"))).scalar_one() == 2


def test_hand_written_event_json_is_the_contract():
    """The hot path writes declaration.submitted's JSON directly (no pydantic per event): every
    payload must parse into exactly the event the model builds from the same values."""
    from libs.common.events.declaration import DeclarationSubmitted, DeclarationSubmittedData

    group = DeclarationIn.model_validate({"venue_code": VENUE.code, "consent": True, "people": [
        person(), person(full_name="Trần Thị Bé", symptoms=["fever", "cough"], phone="")]})
    work = prepare(group, VENUE, BOOK, KEYS, now=datetime.now(UTC), valid_for=timedelta(hours=1), seal_to=SEAL_TO, channel="gate")
    submitted = [row for row in work.outbox if row[1] == "declaration.submitted"]
    assert len(submitted) == 2 and work.urgent == any(d["result"] == "red" for d in work.declarations)
    for row, values in zip(submitted, work.declarations, strict=True):
        event = parse_event(row[4])
        expected = DeclarationSubmitted(
            id=event.id, occurred_at=event.occurred_at, trace_id=event.trace_id, producer="declaration",
            jurisdiction=VENUE.commune_path, data=DeclarationSubmittedData(
                declaration_id=values["id"], submission_id=work.submission_id, venue_id=VENUE.venue_id,
                venue_code=VENUE.code, unit_id=VENUE.unit_id, commune_path=VENUE.commune_path,
                submitted_at=values["submitted_at"], valid_until=values["valid_until"], result=values["result"],
                reasons=[r for r in values["reasons"].split(",") if r], rule_version=BOOK.version, channel="gate",
                group_size=2, full_name=values["full_name"], phone=values["phone"]))
        assert event == expected
        assert row[:4] == (str(event.id), event.type, event.topic, event.partition_key())
        assert row[5] == event.trace_id
    assert [e.type for e in work.events].count("declaration.flagged") == sum(
        d["result"] == "red" for d in work.declarations)


async def test_red_declarations_wake_the_relay_at_once_but_at_most_once_per_gap():
    """Under load most group commits hold a red declaration: the relay is woken for the
    first at once, for the next ones when the gap since the last wake ends (never later),
    and for a full batch of events at once."""
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    nudge = RelayNudge(woken, every=1000, urgent_gap=0.3)
    nudge(1, urgent=True)
    assert woken.is_set(), "the first alert wakes the relay at once"
    woken.clear()
    started = loop.time()
    nudge(1, urgent=True)
    nudge(2, urgent=True)
    nudge(3)
    assert not woken.is_set()
    await asyncio.wait_for(woken.wait(), 2)
    assert 0.2 <= loop.time() - started <= 1.0, "woken when the gap ended, once for the three commits"
    woken.clear()
    nudge(1000)
    assert woken.is_set(), "a full batch of events wakes it whatever the gap"
    woken.clear()
    await asyncio.sleep(0.35)
    assert not woken.is_set(), "the timer was spent: no stray wake"
    nudge(1, urgent=True)
    assert woken.is_set()
