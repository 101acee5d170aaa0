"""The read models built from batches equal the read models built one event at a time.

The same events (declarations, re-sent declarations, flagged ones, alerts raised twice,
acknowledged before they were raised and by two officers, escalated, venues created,
renamed, disabled, with out-of-date updates arriving late, and repeated deliveries) go
through the real consumer twice: once on its careful path (``handle``: one event, one
transaction) and once on its fast path (``_apply_batch``: batches of odd sizes, the batch
handlers summing and merging rows). Every table of the projection must come out the same,
on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import select

from libs.common import migrate
from libs.common.bus import Message
from libs.common.consumer import BatchHandler, EventConsumer, chain_handlers
from libs.common.db import Database
from libs.common.events.declaration import (
    DeclarationFlagged, DeclarationFlaggedData, DeclarationSubmitted, DeclarationSubmittedData, PersonDetails,
    SensitiveDetails,
    VenueRef,
)
from libs.common.events.notification import (
    AlertAcknowledged, AlertAcknowledgedData, AlertEscalated, AlertEscalatedData, AlertRaised, AlertRaisedData,
)
from libs.common.events.provisioning import (
    VenueCodeRotated, VenueCreated, VenueCreatedData, VenueDisabled, VenueUpdated,
)
from services.reporting import aggregates, directory, visits
from services.reporting.app import READ_MODELS

from .conftest import MIGRATIONS

COMMUNES = ("79/787/27664", "79/787/27667", "79/760/26740")
T0 = datetime(2021, 8, 1, 0, 30, tzinfo=UTC)
TABLES = (*aggregates.READ_MODEL_TABLES, directory.venues, directory.units, visits.visits)
NOT_COMPARED = {"seq", "received_at"}  # given on arrival


def world(seed: int = 11) -> list:
    rng = random.Random(seed)
    units = [(uuid4(), COMMUNES[i % 3], f"Đơn vị {i}") for i in range(5)]
    venues = [(uuid4(), unit, f"Cổng {n}", f"K{n:09d}") for n, unit in enumerate(units * 2)]
    events: list = []
    for venue_id, (unit_id, commune, unit_name), name, code in venues:
        created = T0 - timedelta(days=3, minutes=rng.randrange(600))
        data = dict(venue_id=venue_id, code=code, unit_id=unit_id, unit_name=unit_name, name=name,
                    address="12 Đường Lương Văn Nho", commune_path=commune)
        events.append(VenueCreated(producer="provisioning", jurisdiction=commune, occurred_at=created,
                                   data=VenueCreatedData(**data)))
        for step, kind in enumerate(rng.sample([VenueUpdated, VenueDisabled, VenueCodeRotated], 2)):
            state = {**data, "name": f"{name} ({step})", "unit_name": f"{unit_name} ({step})",
                     "active": kind is not VenueDisabled}
            if kind is VenueCodeRotated:
                state.update(code=f"R{step}{code[2:]}", old_code=code)
            events.append(kind(producer="provisioning", jurisdiction=commune,
                               occurred_at=created + timedelta(hours=step + 1),
                               data=kind.model_fields["data"].annotation(**state)))
    for i in range(200):
        venue_id, (unit_id, commune, unit_name), name, code = rng.choice(venues)
        at = T0 + timedelta(minutes=rng.randrange(3 * 24 * 60))  # hours and local days apart
        declaration_id = uuid4()
        events.append(DeclarationSubmitted(producer="declaration", jurisdiction=commune, data=DeclarationSubmittedData(
            declaration_id=declaration_id, submission_id=uuid4(), venue_id=venue_id, venue_code=code,
            unit_id=unit_id, commune_path=commune, submitted_at=at, valid_until=at + timedelta(days=1),
            result=rng.choice(["green"] * 6 + ["yellow", "red"]), rule_version="1", full_name=f"Người {i}",
            phone="0909000111", reasons=["fever"] if i % 7 == 0 else [])))
        if i % 25 == 0:  # the same declaration sent again by a retried producer (another event id)
            again = events[-1].data.model_copy(update={"full_name": "Người khác"})
            events.append(DeclarationSubmitted(producer="declaration", jurisdiction=commune, data=again))
        if i % 9 == 0:
            events.append(DeclarationFlagged(producer="declaration", jurisdiction=commune, data=DeclarationFlaggedData(
                declaration_id=declaration_id, submission_id=uuid4(), commune_path=commune, submitted_at=at,
                venue=VenueRef(venue_id=venue_id, venue_code=code, venue_name=name, unit_id=unit_id,
                               unit_name=unit_name, address="1 Đường A", commune_path=commune),
                result="red", reasons=["fever"], rule_version="1",
                clear=SensitiveDetails(person=PersonDetails(full_name=f"Người {i}")))))
    for i in range(30):
        venue_id, (unit_id, commune, _), _, code = rng.choice(venues)
        alert_id, raised = uuid4(), T0 + timedelta(minutes=rng.randrange(3 * 24 * 60))
        where = dict(alert_id=alert_id, commune_path=commune, district_path=commune.rsplit("/", 1)[0])
        for source in ("flagged", "case_raised")[: 1 + i % 2]:  # some raised twice
            events.append(AlertRaised(producer="notification", jurisdiction=commune, data=AlertRaisedData(
                **where, source=source, source_id=uuid4(), venue_id=venue_id, venue_code=code, unit_id=unit_id,
                raised_at=raised)))
        for minutes in rng.sample(range(1, 90), i % 3):  # none, one or two acknowledgements
            events.append(AlertAcknowledged(producer="notification", jurisdiction=commune, data=AlertAcknowledgedData(
                **where, raised_at=raised, acknowledged_at=raised + timedelta(minutes=minutes),
                by_role="commune_focal")))
        for minutes in (30, 60)[: i % 4 // 2 * 2]:
            events.append(AlertEscalated(producer="notification", jurisdiction=commune, data=AlertEscalatedData(
                **where, raised_at=raised, escalated_at=raised + timedelta(minutes=minutes))))
    rng.shuffle(events)  # any order: partitions, replays
    return events


def messages(events: list) -> list[Message]:
    delivered = [*events, *events[::17]]  # some delivered twice
    return [Message(topic=e.topic, partition=0, offset=n, value=e.to_bytes(), key=e.partition_key().encode(),
                    headers=(("type", e.type.encode()),)) for n, e in enumerate(delivered)]


async def table_rows(database: Database) -> dict[str, list[tuple]]:
    contents = {}
    async with database.transaction(readonly=True) as session:
        for table in TABLES:
            columns = [c for c in table.columns if c.name not in NOT_COMPARED]
            keys = [c for c in table.primary_key.columns if c.name not in NOT_COMPARED] or [table.c.declaration_id]
            rows = await session.execute(select(*columns).order_by(*keys))
            contents[table.name] = [tuple(row) for row in rows]
    return contents


async def test_batches_build_the_same_read_models_as_one_event_at_a_time(backend) -> None:
    handlers = chain_handlers(*READ_MODELS)
    assert all(isinstance(handlers[t], BatchHandler) for t in (
        "declaration.submitted", "declaration.flagged", "notification.alert.raised",
        "notification.alert.acknowledged", "notification.alert.escalated", "provisioning.venue.created"))
    sent = messages(world())
    one_by_one = Database(await backend.database_url("single"))
    batched = Database(await backend.database_url("batched"))
    try:
        for database in (one_by_one, batched):
            await migrate.upgrade(database, MIGRATIONS, "reporting")
        careful = EventConsumer(one_by_one, None, "reporting", "reporting", handlers)
        for message in sent:
            await careful.handle(message)
        fast = EventConsumer(batched, None, "reporting", "reporting", handlers)
        start, sizes = 0, [97, 1, 250, 33]
        while start < len(sent):
            size = sizes[start % len(sizes)]
            assert await fast._apply_batch(sent[start:start + size])
            start += size

        expected, actual = await table_rows(one_by_one), await table_rows(batched)
        assert {name: len(rows) for name, rows in actual.items()} == {name: len(rows) for name, rows in
                                                                       expected.items()}
        for table in TABLES:
            assert actual[table.name] == expected[table.name], table.name
        assert len(expected["visits"]) == 200
        assert sum(r[-1] for r in expected["declaration_hourly"] if r[0] == "79" and r[2] != "flagged") == 200 + 8
        async with batched.transaction(readonly=True) as session:  # the visits keep the order of arrival
            first_seen = list(dict.fromkeys(e.data.declaration_id for e in map(_parse, sent)
                                            if e.type == "declaration.submitted"))
            by_seq = (await session.execute(select(visits.visits.c.declaration_id)
                                            .order_by(visits.visits.c.seq))).scalars().all()
        assert by_seq == first_seen
    finally:
        await one_by_one.dispose()
        await batched.dispose()


def _parse(message: Message):  # noqa: ANN202
    from libs.common.events import parse_event

    return parse_event(message.value)
