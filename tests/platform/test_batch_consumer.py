"""Batch handlers in the idempotent consumer, on both backends.

A batch handler gets every new event of its type in a polled batch at once. The consumer
claims the batch's event ids with one multi-row insert: what was processed before, and a
repeat within the batch, is dropped. An unreadable message is dead-lettered and the rest
of its batch still applied together; a batch handler that fails sends the batch down the
careful path, one event at a time, where only the bad event is dead-lettered. Plain
handlers keep their place in the batch's order.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from libs.common import outbox
from libs.common.bus import OutgoingMessage
from libs.common.consumer import (
    CLAIM_CHUNK, BatchHandler, batch_handler, chain_handlers, claim_events, plan_batch,
)
from libs.common.events import DEAD_LETTER_TOPIC, Event

from .support import (
    GROUP, LABELLED, RECORDED, TOPIC, applied_ids, apply_effect, effects, eventually, labelled, make_consumer,
    message_of, open_bus, open_database, processed_ids, raw_envelope, read_topic, recorded, rows, running,
)


@pytest.fixture
async def platform(backend):
    """The consumer's database and the bus (the events are published straight to the bus)."""
    database = await open_database(await backend.database_url("consumer"))
    bus = open_bus(backend.bus_url, **backend.bus_options())
    await bus.start()
    await bus.ensure_topics([TOPIC, DEAD_LETTER_TOPIC])
    try:
        yield SimpleNamespace(db=database, bus=bus, backend=backend)
    finally:
        await bus.stop()
        await database.dispose()


class Recorder:
    """A batch handler that writes one effect per event and remembers each call's event ids."""

    def __init__(self, fail_on_negative: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail_on_negative = fail_on_negative
        self.handler = BatchHandler(self.apply_many)

    async def apply_many(self, session, events: list[Event]) -> None:  # noqa: ANN001
        self.calls.append([str(e.id) for e in events])
        for event in events:
            if self.fail_on_negative and getattr(event.data, "value", 0) < 0:
                raise RuntimeError(f"cannot record a negative value {event.data.value}")
            await apply_effect(session, event)

    def attempts(self, event: Event) -> int:
        return sum(str(event.id) in call for call in self.calls)


async def has_applied(database, event: Event) -> bool:  # noqa: ANN001
    return str(event.id) in await applied_ids(database)


async def test_claim_events_returns_only_the_new_ids_across_chunks(platform) -> None:
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(CLAIM_CHUNK * 2 + 17)]
    async with platform.db.transaction() as session:
        assert await claim_events(session, GROUP, ids[::4]) == set(ids[::4])
    async with platform.db.transaction() as session:
        assert await claim_events(session, GROUP, ids) == set(ids) - set(ids[::4])
    async with platform.db.transaction() as session:
        assert await claim_events(session, GROUP, ids) == set()
        assert await claim_events(session, "another-consumer", ids[:3]) == set(ids[:3])
    assert sorted(await processed_ids(platform.db)) == sorted(ids)


async def test_a_batch_with_repeats_and_processed_events_applies_each_once(platform) -> None:
    p = platform
    events = [recorded("batch", n) for n in range(10)]
    done_before = events[:3]  # processed by this consumer earlier (e.g. before a restart)
    async with p.db.transaction() as session:
        await session.execute(outbox.processed_events.insert(), [
            {"consumer": GROUP, "event_id": str(e.id), "processed_at": time.time()} for e in done_before])
    barrier = recorded("batch", 99)
    events.append(barrier)
    sent = [*events[:10], events[4], events[5], events[0], events[9], barrier]  # repeats within the batch
    await p.bus.publish([message_of(e) for e in sent])

    recorder = Recorder()
    consumer = make_consumer(p.db, p.bus, {RECORDED: recorder.handler}, batch_size=200)
    async with running(consumers=[consumer]) as runner:
        await eventually(lambda: has_applied(p.db, barrier), what="the last event", runner=runner)

    new = [str(e.id) for e in events[3:]]
    assert Counter(await applied_ids(p.db)) == {i: 1 for i in new}
    assert sorted(await processed_ids(p.db)) == sorted(str(e.id) for e in events)
    assert [i for call in recorder.calls for i in call] == new  # in bus order, each once
    assert max(len(call) for call in recorder.calls) > 1, recorder.calls  # applied as a batch


async def test_an_unreadable_message_is_dead_lettered_and_the_rest_applied_together(platform) -> None:
    p = platform
    before = [recorded("mixed", n) for n in range(5)]
    after = [recorded("mixed", n) for n in range(5, 10)]
    not_json = OutgoingMessage(topic=TOPIC, key=b"mixed", value=b"\xff not JSON", headers=(("type", RECORDED.encode()),))
    unknown = OutgoingMessage(topic=TOPIC, key=b"mixed", value=json.dumps(raw_envelope(
        "platformtest.item.vanished", {"item_id": "mixed"})).encode())
    await p.bus.publish([*map(message_of, before), not_json, unknown, *map(message_of, after)])

    recorder = Recorder()
    consumer = make_consumer(p.db, p.bus, {RECORDED: recorder.handler}, batch_size=200)
    async with running(consumers=[consumer]) as runner:
        await eventually(lambda: has_applied(p.db, after[-1]), what="the events after the unreadable ones",
                         runner=runner)
        dead = await read_topic(p.bus, [DEAD_LETTER_TOPIC], expect=2)

    good = [str(e.id) for e in (*before, *after)]
    assert Counter(await applied_ids(p.db)) == {i: 1 for i in good}
    assert sorted(await processed_ids(p.db)) == sorted(good)
    assert len(recorder.calls) < len(good), recorder.calls  # not taken one by one
    assert sorted(m.value for m in dead) == sorted([not_json.value, unknown.value])
    reasons = {m.value: json.loads(m.header("error"))["error"] for m in dead}
    assert reasons == {not_json.value: "MalformedEvent", unknown.value: "UnknownEvent"}
    assert {m.header("type") for m in dead} == {RECORDED, "unknown"}


async def test_a_failing_batch_handler_falls_back_to_one_by_one_and_dead_letters_only_the_bad_event(
        platform) -> None:
    p = platform
    before = [recorded("fails", n) for n in range(4)]
    bad = recorded("fails", -1)
    after = [recorded("fails", n) for n in range(10, 14)]
    await p.bus.publish([message_of(e) for e in (*before, bad, *after)])

    recorder = Recorder(fail_on_negative=True)
    max_attempts = 3
    consumer = make_consumer(p.db, p.bus, {RECORDED: recorder.handler}, max_attempts=max_attempts, backoff=0.02,
                             batch_size=200)
    async with running(consumers=[consumer]) as runner:
        await eventually(lambda: has_applied(p.db, after[-1]), what="the events after the failing one",
                         runner=runner)
        dead = await read_topic(p.bus, [DEAD_LETTER_TOPIC], expect=1)

    good = [str(e.id) for e in (*before, *after)]
    assert Counter(await applied_ids(p.db)) == {i: 1 for i in good}
    assert sorted(await processed_ids(p.db)) == sorted(good)  # the failed one left no trace
    # One try within the batch, then max_attempts on its own: the careful path calls the
    # batch handler with a list of one.
    assert recorder.attempts(bad) == max_attempts + 1
    assert [call for call in recorder.calls if str(bad.id) in call][1:] == [[str(bad.id)]] * max_attempts
    assert len(dead) == 1
    assert dead[0].value == message_of(bad).value
    assert json.loads(dead[0].header("error")) == {"error": "RuntimeError",
                                                   "detail": "cannot record a negative value -1"}


async def test_plain_handlers_keep_their_place_between_batches(platform) -> None:
    """RECORDED has a batch handler, LABELLED a plain one: the effects appear in bus order,
    the recorded events between two labelled ones applied in one call."""
    p = platform
    sent = [recorded("order", 1), recorded("order", 2), labelled("order", "a"), recorded("order", 3),
            recorded("order", 4), recorded("order", 5), labelled("order", "b"), recorded("order", 6)]
    await p.bus.publish([message_of(e) for e in sent])
    recorder = Recorder()
    plain_calls: list[str] = []

    async def plain(session, event: Event) -> None:  # noqa: ANN001
        plain_calls.append(str(event.id))
        await apply_effect(session, event)

    consumer = make_consumer(p.db, p.bus, {RECORDED: recorder.handler, LABELLED: plain}, batch_size=200)
    async with running(consumers=[consumer]) as runner:
        await eventually(lambda: has_applied(p.db, sent[-1]), what="the last event", runner=runner)

    order = [r.event_id for r in await rows(p.db, select(effects.c.event_id).order_by(effects.c.id))]
    assert order == [str(e.id) for e in sent]
    assert plain_calls == [str(sent[2].id), str(sent[6].id)]
    assert [str(e.id) for e in sent[3:6]] in recorder.calls, recorder.calls


# --- the plan of a batch and the chains, without a bus -------------------------------------

def test_plan_groups_order_tolerant_batch_types_and_keeps_plain_and_ordered_ones_in_place() -> None:
    async def plain(session, event) -> None:  # noqa: ANN001
        pass

    tolerant_r, tolerant_l = BatchHandler(plain), BatchHandler(plain)
    ordered = BatchHandler(plain, ordered=True)
    r = [recorded("plan", n) for n in range(4)]
    lab = [labelled("plan", str(n)) for n in range(3)]

    names = {**{e.id: f"r{n}" for n, e in enumerate(r)}, **{e.id: f"l{n}" for n, e in enumerate(lab)}}

    def shape(plan) -> list[tuple[object, list[str]]]:  # noqa: ANN001
        return [(handler, [names[e.id] for e in events]) for handler, events in plan]

    # Order-tolerant batch types: one call per type, in first-appearance order.
    work = [(r[0], tolerant_r), (lab[0], tolerant_l), (r[1], tolerant_r), (lab[1], tolerant_l), (r[2], tolerant_r)]
    assert shape(plan_batch(work)) == [(tolerant_r, ["r0", "r1", "r2"]), (tolerant_l, ["l0", "l1"])]
    # A plain handler is a barrier: what came before it is applied before it.
    work = [(r[0], tolerant_r), (lab[0], plain), (r[1], tolerant_r), (r[2], tolerant_r)]
    assert shape(plan_batch(work)) == [(tolerant_r, ["r0"]), (plain, ["l0"]), (tolerant_r, ["r1", "r2"])]
    # An ordered batch type: consecutive runs together, in place.
    work = [(lab[0], ordered), (lab[1], ordered), (r[0], tolerant_r), (lab[2], ordered), (r[1], tolerant_r)]
    assert shape(plan_batch(work)) == [(ordered, ["l0", "l1"]), (tolerant_r, ["r0"]), (ordered, ["l2"]),
                                       (tolerant_r, ["r1"])]
    # Plain handlers: one call per event.
    work = [(lab[0], plain), (lab[1], plain)]
    assert shape(plan_batch(work)) == [(plain, ["l0"]), (plain, ["l1"])]


async def test_chains_compose_batch_and_plain_handlers() -> None:
    calls: list[tuple[str, list[int]]] = []

    @batch_handler
    async def batch_a(session, events) -> None:  # noqa: ANN001
        calls.append(("a", [e.data.value for e in events]))

    async def plain_b(session, event) -> None:  # noqa: ANN001
        calls.append(("b", [event.data.value]))

    @batch_handler(ordered=True)
    async def batch_c(session, events) -> None:  # noqa: ANN001
        calls.append(("c", [e.data.value for e in events]))

    chained = chain_handlers({RECORDED: batch_a, LABELLED: plain_b}, {RECORDED: plain_b},
                             {RECORDED: batch_c})
    assert chained[LABELLED] is plain_b
    step = chained[RECORDED]
    assert isinstance(step, BatchHandler) and step.ordered  # ordered as its most careful step
    events = [recorded("chain", n) for n in range(3)]
    await step.apply_many(None, events)
    assert calls == [("a", [0, 1, 2]), ("b", [0]), ("b", [1]), ("b", [2]), ("c", [0, 1, 2])]
    calls.clear()
    await step(None, events[0])  # called like a plain handler: a list of one
    assert calls == [("a", [0]), ("b", [0]), ("c", [0])]
    tolerant = chain_handlers({RECORDED: batch_a}, {RECORDED: batch_a})[RECORDED]
    assert isinstance(tolerant, BatchHandler) and not tolerant.ordered
