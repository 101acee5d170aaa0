"""Aggregate read models of the dashboards, built from events only.

- ``declaration_hourly``: declarations per area per hour (UTC, truncated) per result.
  One declaration adds 1 to the row of each area it lies in: the city, its district,
  its commune, and the unit (area key ``unit:<unit id>``), so that a dashboard of any
  jurisdiction reads a few hundred rows whatever the number of declarations. The result
  ``flagged`` counts ``declaration.flagged`` events (a declaration screened red that
  became a suspected case), the others count ``declaration.submitted`` by screening
  result (green, yellow, red).
- ``venue_day``: declarations per venue per local day (Vietnam time), the red ones also
  apart, with the venue's district and commune: the busiest venues of an area and a unit's
  own venues are sums over one index (day, district, commune or unit) by equality.
- ``unit_live``: the first declaration received by each unit ("live" in the funnel).
- ``unit_issued``: units whose administrator account was issued (``issued``), with the
  registration they came from.
- ``alert_facts``: each alert with the times it was raised, acknowledged, escalated, and
  its district and commune (an area's alerts are read by equality, like its venues); its
  ``kind`` (``burst`` for a venue's "unusual burst" alert: one alert however many reds it
  gathers; NULL, read as ``single``, for the others and for events without the field).

Counters are upserts (``count = count + n``); the consumer records each processed event
id in the same transaction, so a redelivered event is never counted twice. Everything is
order-tolerant: an acknowledgement that arrives before its alert fills in the same row.

The handlers of declarations and alerts are batch handlers (``libs/common/consumer.py``):
they get every new event of their type in a polled batch, sum or merge them per row in
Python (one row per key) and write each table with one upsert statement executed for all
its rows at once (``execute(statement, rows)``: compiled once, the rows sent together by
the driver); the result is the one of applying the events one by one.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import (
    Column, Date, DateTime, Index, Integer, MetaData, String, Table, Uuid, case, func,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.consumer import batch_handler
from libs.common.events.declaration import DeclarationFlagged, DeclarationSubmitted
from libs.common.events.notification import AlertAcknowledged, AlertEscalated, AlertRaised
from libs.common.events.provisioning import AccountIssued

VIETNAM = timezone(timedelta(hours=7), "ICT")  # no daylight saving time
RESULTS = ("green", "yellow", "red")
FLAGGED = "flagged"

metadata = MetaData()

declaration_hourly = Table(
    "declaration_hourly", metadata,
    Column("area", String(60), primary_key=True),
    Column("hour", DateTime(), primary_key=True),  # naive UTC, truncated to the hour
    Column("result", String(10), primary_key=True),
    Column("declarations", Integer(), nullable=False),
)

venue_day = Table(
    "venue_day", metadata,
    Column("venue_id", Uuid(), primary_key=True),
    Column("day", Date(), primary_key=True),  # local day (Vietnam time)
    Column("venue_code", String(20), nullable=False),
    Column("unit_id", Uuid(), nullable=False),
    Column("district_path", String(60), nullable=False),
    Column("commune_path", String(60), nullable=False),
    Column("declarations", Integer(), nullable=False),
    Column("red", Integer(), nullable=False),
    Index("venue_day_day", "day", postgresql_include=["venue_id", "declarations", "red"]),
    Index("venue_day_district_day", "district_path", "day", postgresql_include=["venue_id", "declarations", "red"]),
    Index("venue_day_commune_day", "commune_path", "day", postgresql_include=["venue_id", "declarations", "red"]),
    Index("venue_day_unit_day", "unit_id", "day", postgresql_include=["venue_id", "declarations", "red"]),
)

unit_live = Table(
    "unit_live", metadata,
    Column("unit_id", Uuid(), primary_key=True),
    Column("commune_path", String(60), nullable=False, index=True),
    Column("first_at", DateTime(), nullable=False),  # naive UTC
)

unit_issued = Table(
    "unit_issued", metadata,
    Column("unit_id", Uuid(), primary_key=True),
    Column("registration_id", Uuid()),
    Column("commune_path", String(60), nullable=False, index=True),
    Column("issued_at", DateTime(), nullable=False),
)

alert_facts = Table(
    "alert_facts", metadata,
    Column("alert_id", Uuid(), primary_key=True),
    Column("district_path", String(60), nullable=False),
    Column("commune_path", String(60), nullable=False, index=True),
    Column("unit_id", Uuid()),
    Column("venue_id", Uuid()),
    Column("source", String(20)),
    Column("kind", String(10)),  # burst | single (NULL: single)
    Column("raised_at", DateTime(), nullable=False),
    Column("acknowledged_at", DateTime()),
    Column("escalated_at", DateTime()),
    Index("alert_facts_raised", "raised_at", postgresql_include=["commune_path", "acknowledged_at", "escalated_at"]),
    Index("alert_facts_district_raised", "district_path", "raised_at"),
    Index("alert_facts_commune_raised", "commune_path", "raised_at"),
    Index("alert_facts_unit_raised", "unit_id", "raised_at"),
    Index("alert_facts_venue_kind", "venue_id", "kind"),
)

READ_MODEL_TABLES = (declaration_hourly, venue_day, unit_live, unit_issued, alert_facts)


def naive_utc(moment: datetime) -> datetime:
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).replace(tzinfo=None)


def hour_of(moment: datetime) -> datetime:
    return naive_utc(moment).replace(minute=0, second=0, microsecond=0)


def local_day(moment: datetime) -> date:
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(VIETNAM).date()


def areas_of(commune_path: str) -> list[str]:
    """``79/787/27664`` -> ``79``, ``79/787``, ``79/787/27664``."""
    parts = commune_path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def district_of(commune_path: str) -> str:
    """``79/787/27664`` -> ``79/787``."""
    return commune_path.rsplit("/", 1)[0]


def unit_area(unit_id: object) -> str:
    return f"unit:{unit_id}"


def _insert(session: AsyncSession, table: Table):  # noqa: ANN202
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(table)


async def _add_counts(session: AsyncSession, table: Table, keys: list[str], rows: list[dict],
                      counters: tuple[str, ...] = ("declarations",)) -> None:
    """Upsert ``rows`` (distinct keys), adding their ``counters`` to the existing counts."""
    if rows:
        statement = _insert(session, table)
        await session.execute(statement.on_conflict_do_update(
            index_elements=keys, set_={name: table.c[name] + statement.excluded[name] for name in counters}), rows)


async def _count_hours(session: AsyncSession, counts: Counter[tuple[str, datetime, str]]) -> None:
    await _add_counts(session, declaration_hourly, ["area", "hour", "result"],
                      [{"area": area, "hour": hour, "result": result, "declarations": n}
                       for (area, hour, result), n in counts.items()])


@batch_handler
async def on_declaration_submitted(session: AsyncSession, events: list[DeclarationSubmitted]) -> None:
    """Declarations counted per area and hour, per venue and day; each unit's first declaration.
    The counts of the batch are summed here, then added with one upsert per table."""
    hours: Counter[tuple[str, datetime, str]] = Counter()
    days: dict[tuple[object, date], dict] = {}
    firsts: dict[object, dict] = {}
    for event in events:
        data = event.data
        hour = hour_of(data.submitted_at)
        for area in (*areas_of(data.commune_path), unit_area(data.unit_id)):
            hours[(area, hour, data.result)] += 1
        key = (data.venue_id, local_day(data.submitted_at))
        day = days.get(key)
        if day is None:  # the venue's code, unit and commune as the first declaration of the row gave them
            day = days[key] = {"venue_id": data.venue_id, "day": key[1], "venue_code": data.venue_code,
                               "unit_id": data.unit_id, "district_path": district_of(data.commune_path),
                               "commune_path": data.commune_path, "declarations": 0, "red": 0}
        day["declarations"] += 1
        if data.result == "red":
            day["red"] += 1
        at = naive_utc(data.submitted_at)
        first = firsts.get(data.unit_id)
        if first is None:
            firsts[data.unit_id] = {"unit_id": data.unit_id, "commune_path": data.commune_path, "first_at": at}
        elif at < first["first_at"]:
            first["first_at"] = at
    await _count_hours(session, hours)
    await _add_counts(session, venue_day, ["venue_id", "day"], list(days.values()), ("declarations", "red"))
    earliest = func.min if session.bind.dialect.name == "sqlite" else func.least
    if firsts:
        statement = _insert(session, unit_live)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["unit_id"], set_={"first_at": earliest(unit_live.c.first_at, statement.excluded.first_at)}),
            list(firsts.values()))


@batch_handler
async def on_declaration_flagged(session: AsyncSession, events: list[DeclarationFlagged]) -> None:
    hours: Counter[tuple[str, datetime, str]] = Counter()
    for event in events:
        data = event.data
        hour = hour_of(data.submitted_at)
        for area in (*areas_of(data.commune_path), unit_area(data.venue.unit_id)):
            hours[(area, hour, FLAGGED)] += 1
    await _count_hours(session, hours)


async def on_account_issued(session: AsyncSession, event: AccountIssued) -> None:
    data = event.data
    if data.role != "unit_admin":
        return
    statement = _insert(session, unit_issued).values(
        unit_id=data.unit_id, registration_id=data.registration_id, commune_path=data.commune_path,
        issued_at=naive_utc(event.occurred_at))
    await session.execute(statement.on_conflict_do_nothing(index_elements=["unit_id"]))


def _alert_rows(rows: list[dict], merge: Callable[[dict, dict], None]) -> list[dict]:
    """One row per alert: the first event's row (it would insert it), ``merge``d with the later ones."""
    merged: dict[object, dict] = {}
    for row in rows:
        if row["alert_id"] in merged:
            merge(merged[row["alert_id"]], row)
        else:
            merged[row["alert_id"]] = row
    return list(merged.values())


def _alert_row(alert_id: object, commune_path: str, raised_at: datetime, **changes: object) -> dict:
    return {"alert_id": alert_id, "district_path": district_of(commune_path), "commune_path": commune_path,
            "raised_at": naive_utc(raised_at),
            "unit_id": None, "venue_id": None, "source": None, "kind": None, "acknowledged_at": None,
            "escalated_at": None,
            **changes}


async def _upsert_alerts(session: AsyncSession, rows: list[dict], set_: Callable[[object], dict]) -> None:
    statement = _insert(session, alert_facts)
    await session.execute(statement.on_conflict_do_update(index_elements=["alert_id"], set_=set_(statement)), rows)


RAISED = ("unit_id", "venue_id", "source", "kind")


@batch_handler
async def on_alert_raised(session: AsyncSession, events: list[AlertRaised]) -> None:
    """The alert's unit, venue and source (the latest event's); its time and commune as first raised."""
    def later(kept: dict, row: dict) -> None:
        kept.update({name: row[name] for name in RAISED})

    rows = _alert_rows([_alert_row(e.data.alert_id, e.data.commune_path, e.data.raised_at, unit_id=e.data.unit_id,
                                   venue_id=e.data.venue_id, source=e.data.source, kind=e.data.kind)
                        for e in events], later)
    await _upsert_alerts(session, rows, lambda statement: {name: statement.excluded[name] for name in RAISED})


@batch_handler
async def on_alert_acknowledged(session: AsyncSession, events: list[AlertAcknowledged]) -> None:
    """The first acknowledgement counts (a second officer acknowledging changes nothing)."""
    def earliest(kept: dict, row: dict) -> None:
        kept["acknowledged_at"] = min(kept["acknowledged_at"], row["acknowledged_at"])

    rows = _alert_rows([_alert_row(e.data.alert_id, e.data.commune_path, e.data.raised_at,
                                   acknowledged_at=naive_utc(e.data.acknowledged_at)) for e in events], earliest)

    def set_(statement) -> dict:  # noqa: ANN001
        return {"acknowledged_at": case(
            (alert_facts.c.acknowledged_at.is_(None), statement.excluded.acknowledged_at),
            (alert_facts.c.acknowledged_at <= statement.excluded.acknowledged_at, alert_facts.c.acknowledged_at),
            else_=statement.excluded.acknowledged_at)}
    await _upsert_alerts(session, rows, set_)


@batch_handler
async def on_alert_escalated(session: AsyncSession, events: list[AlertEscalated]) -> None:
    """The escalation time of the latest escalation event."""
    def later(kept: dict, row: dict) -> None:
        kept["escalated_at"] = row["escalated_at"]

    rows = _alert_rows([_alert_row(e.data.alert_id, e.data.commune_path, e.data.raised_at,
                                   escalated_at=naive_utc(e.data.escalated_at)) for e in events], later)
    await _upsert_alerts(session, rows, lambda statement: {"escalated_at": statement.excluded.escalated_at})


HANDLERS = {
    "declaration.submitted": on_declaration_submitted,
    "declaration.flagged": on_declaration_flagged,
    "provisioning.account.issued": on_account_issued,
    "notification.alert.raised": on_alert_raised,
    "notification.alert.acknowledged": on_alert_acknowledged,
    "notification.alert.escalated": on_alert_escalated,
}
