"""Handler maps of the idempotent consumer (``consumer.py``): plain and batch handlers,
their chains (several read models handling one event type) and the plan that applies a
polled batch with them.

- a plain handler ``async def h(session, event)`` is applied to each event on its own;
- a ``BatchHandler`` (``@batch_handler async def h(session, events)``) is given every new
  event of its type in a polled batch at once, in their order, so that it can write them
  with a few statements for the whole list instead of a few per event. Called with one
  event (``await h(session, event)``) it applies a list of one: the careful path, the
  rebuild and the tests use it like a plain handler.

``plan_batch`` keeps the batch's order wherever it matters:

- a plain handler, or a batch handler declared ``ordered=True``, sees its events exactly
  where they stand in the batch (a run of consecutive events of one ordered batch handler
  is one call); whatever was gathered before it is applied first;
- the events of order-tolerant batch handlers (the default) between two such points are
  grouped per type, the types in the order they first appear, each type's events in
  their order. An order-tolerant handler must therefore give the same result whatever
  the order of its events relative to other types' events (commutative counters, upserts
  that keep the newest or earliest value).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .events import Event
from .observability import reset_trace_id, set_trace_id

Handler = Callable[[AsyncSession, Event], Awaitable[None]]
ApplyMany = Callable[[AsyncSession, list[Any]], Awaitable[None]]


class BatchHandler:
    """A handler that applies many events at once.

    ``apply_many(session, events)`` gets the new (never processed) events of one type, in
    their order, inside the consumer's transaction (one handler may serve several types:
    it is then called once per type); it must give the same result as
    applying them one by one. Calling the handler with one event applies a list of one.
    ``ordered``: the events must be applied exactly where they stand relative to other
    types' events (see the module docstring); False (the default) lets the consumer group
    them per type within a batch.
    """

    def __init__(self, apply_many: ApplyMany, *, ordered: bool = False) -> None:
        self.apply_many = apply_many
        self.ordered = ordered
        self.__name__ = getattr(apply_many, "__name__", type(self).__name__)
        self.__doc__ = getattr(apply_many, "__doc__", None)

    async def __call__(self, session: AsyncSession, event: Event) -> None:
        await self.apply_many(session, [event])

    def __repr__(self) -> str:
        return f"BatchHandler({self.__name__}{', ordered' if self.ordered else ''})"


def batch_handler(apply_many: ApplyMany | None = None, *, ordered: bool = False):  # noqa: ANN201
    """Decorator: ``@batch_handler`` or ``@batch_handler(ordered=True)`` on ``async def h(session, events)``."""
    if apply_many is None:
        return lambda function: BatchHandler(function, ordered=ordered)
    return BatchHandler(apply_many, ordered=ordered)


async def apply_each(handler: Handler, session: AsyncSession, events: Sequence[Event]) -> None:
    """Apply ``events`` with ``handler``: at once if it is a batch handler, else one by one
    (each under its own trace id)."""
    if isinstance(handler, BatchHandler):
        await handler.apply_many(session, list(events))
        return
    for event in events:
        token = set_trace_id(event.trace_id)
        try:
            await handler(session, event)
        finally:
            reset_trace_id(token)


def chain_handlers(*maps: Mapping[str, Handler]) -> dict[str, Handler]:
    """One handler map from several (one per read model): handlers of the same event type
    run in the order given, in the same transaction. If any handler of a type is a batch
    handler, the chain is one too (the plain ones among them then run event by event after
    the preceding steps took the whole list); it is ordered if any of its steps is."""
    chains: dict[str, list[Handler]] = {}
    for handlers in maps:
        for event_type, handler in handlers.items():
            chains.setdefault(event_type, []).append(handler)

    def chained(steps: list[Handler]) -> Handler:
        if len(steps) == 1:
            return steps[0]
        if any(isinstance(step, BatchHandler) for step in steps):
            async def run_all_many(session: AsyncSession, events: list[Event]) -> None:
                for step in steps:
                    await apply_each(step, session, events)
            return BatchHandler(run_all_many, ordered=any(getattr(step, "ordered", True) for step in steps))

        async def run_all(session: AsyncSession, event: Event) -> None:
            for step in steps:
                await step(session, event)
        return run_all

    return {event_type: chained(steps) for event_type, steps in chains.items()}


def plan_batch(work: Sequence[tuple[Event, Handler]]) -> list[tuple[Handler, list[Event]]]:
    """The calls that apply ``work`` (events in bus order with their handler), see the module
    docstring: plain and ordered handlers where they stand, order-tolerant batch handlers
    grouped per type between them."""
    plan: list[tuple[Handler, list[Event]]] = []
    grouped: dict[tuple[str, Handler], tuple[Handler, list[Event]]] = {}
    for event, handler in work:
        if isinstance(handler, BatchHandler) and not handler.ordered:  # per type and handler
            grouped.setdefault((event.type, handler), (handler, []))[1].append(event)
            continue
        if grouped:
            plan.extend(grouped.values())
            grouped = {}
        if isinstance(handler, BatchHandler) and plan and plan[-1][0] is handler:
            plan[-1][1].append(event)  # a run of consecutive events of one ordered batch type
        else:
            plan.append((handler, [event]))
    plan.extend(grouped.values())
    return plan
