"""Aggregate read models of the dashboards, built from events only.

- ``declaration_hourly``: declarations per area per hour (UTC, truncated) per result.
  One declaration adds 1 to the row of each area it lies in: the city, its district,
  its commune, and the unit (area key ``unit:<unit id>``), so that a dashboard of any
  jurisdiction reads a few hundred rows whatever the number of declarations. The result
  ``flagged`` counts ``declaration.flagged`` events (a declaration screened red that
  became a suspected case), the others count ``declaration.submitted`` by screening
  result (green, yellow, red).
- ``venue_daily``: declarations per venue per local day (Vietnam time) per result, for
  the busiest venues and a unit's own venues.
- ``unit_live``: the first declaration received by each unit ("live" in the funnel).
- ``unit_issued``: units whose administrator account was issued (``issued``), with the
  registration they came from.
- ``alert_facts``: each alert with the times it was raised, acknowledged, escalated.

Counters are upserts (``count = count + 1``); the consumer records each processed event
id in the same transaction, so a redelivered event is never counted twice. Everything is
order-tolerant: an acknowledgement that arrives before its alert fills in the same row.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import (
    Column, Date, DateTime, Index, Integer, MetaData, String, Table, Uuid, case, func,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

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

venue_daily = Table(
    "venue_daily", metadata,
    Column("venue_id", Uuid(), primary_key=True),
    Column("day", Date(), primary_key=True),  # local day (Vietnam time)
    Column("result", String(10), primary_key=True),
    Column("venue_code", String(20), nullable=False),
    Column("unit_id", Uuid(), nullable=False),
    Column("commune_path", String(60), nullable=False),
    Column("declarations", Integer(), nullable=False),
    Index("venue_daily_commune_day", "commune_path", "day"),
    Index("venue_daily_unit_day", "unit_id", "day"),
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
    Column("commune_path", String(60), nullable=False, index=True),
    Column("unit_id", Uuid()),
    Column("venue_id", Uuid()),
    Column("source", String(20)),
    Column("raised_at", DateTime(), nullable=False),
    Column("acknowledged_at", DateTime()),
    Column("escalated_at", DateTime()),
)

READ_MODEL_TABLES = (declaration_hourly, venue_daily, unit_live, unit_issued, alert_facts)


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


def unit_area(unit_id: object) -> str:
    return f"unit:{unit_id}"


def _insert(session: AsyncSession, table: Table):  # noqa: ANN202
    return (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(table)


async def _count_hour(session: AsyncSession, areas: list[str], at: datetime, result: str) -> None:
    hour = hour_of(at)
    statement = _insert(session, declaration_hourly).values(
        [{"area": area, "hour": hour, "result": result, "declarations": 1} for area in areas])
    await session.execute(statement.on_conflict_do_update(
        index_elements=["area", "hour", "result"],
        set_={"declarations": declaration_hourly.c.declarations + 1}))


async def on_declaration_submitted(session: AsyncSession, event: DeclarationSubmitted) -> None:
    data = event.data
    await _count_hour(session, [*areas_of(data.commune_path), unit_area(data.unit_id)], data.submitted_at,
                      data.result)
    daily = _insert(session, venue_daily).values(
        venue_id=data.venue_id, day=local_day(data.submitted_at), result=data.result, venue_code=data.venue_code,
        unit_id=data.unit_id, commune_path=data.commune_path, declarations=1)
    await session.execute(daily.on_conflict_do_update(
        index_elements=["venue_id", "day", "result"], set_={"declarations": venue_daily.c.declarations + 1}))
    first = _insert(session, unit_live).values(unit_id=data.unit_id, commune_path=data.commune_path,
                                               first_at=naive_utc(data.submitted_at))
    await session.execute(first.on_conflict_do_update(
        index_elements=["unit_id"],
        set_={"first_at": func.min(unit_live.c.first_at, first.excluded.first_at)
              if session.bind.dialect.name == "sqlite"
              else func.least(unit_live.c.first_at, first.excluded.first_at)}))


async def on_declaration_flagged(session: AsyncSession, event: DeclarationFlagged) -> None:
    data = event.data
    await _count_hour(session, [*areas_of(data.commune_path), unit_area(data.venue.unit_id)], data.submitted_at,
                      FLAGGED)


async def on_account_issued(session: AsyncSession, event: AccountIssued) -> None:
    data = event.data
    if data.role != "unit_admin":
        return
    statement = _insert(session, unit_issued).values(
        unit_id=data.unit_id, registration_id=data.registration_id, commune_path=data.commune_path,
        issued_at=naive_utc(event.occurred_at))
    await session.execute(statement.on_conflict_do_nothing(index_elements=["unit_id"]))


async def _alert(session: AsyncSession, alert_id: object, commune_path: str, raised_at: datetime,
                 **changes: object) -> None:
    statement = _insert(session, alert_facts).values(
        alert_id=alert_id, commune_path=commune_path, raised_at=naive_utc(raised_at),
        **{"unit_id": None, "venue_id": None, "source": None, "acknowledged_at": None, "escalated_at": None,
           **changes})
    await session.execute(statement.on_conflict_do_update(index_elements=["alert_id"], set_=changes))


async def on_alert_raised(session: AsyncSession, event: AlertRaised) -> None:
    data = event.data
    await _alert(session, data.alert_id, data.commune_path, data.raised_at, unit_id=data.unit_id,
                 venue_id=data.venue_id, source=data.source)


async def on_alert_acknowledged(session: AsyncSession, event: AlertAcknowledged) -> None:
    data = event.data
    statement = _insert(session, alert_facts).values(
        alert_id=data.alert_id, commune_path=data.commune_path, raised_at=naive_utc(data.raised_at),
        unit_id=None, venue_id=None, source=None, acknowledged_at=naive_utc(data.acknowledged_at),
        escalated_at=None)
    # The first acknowledgement counts (a second officer acknowledging changes nothing).
    earlier = case((alert_facts.c.acknowledged_at.is_(None), statement.excluded.acknowledged_at),
                   (alert_facts.c.acknowledged_at <= statement.excluded.acknowledged_at,
                    alert_facts.c.acknowledged_at), else_=statement.excluded.acknowledged_at)
    await session.execute(statement.on_conflict_do_update(index_elements=["alert_id"],
                                                          set_={"acknowledged_at": earlier}))


async def on_alert_escalated(session: AsyncSession, event: AlertEscalated) -> None:
    data = event.data
    await _alert(session, data.alert_id, data.commune_path, data.raised_at,
                 escalated_at=naive_utc(data.escalated_at))


HANDLERS = {
    "declaration.submitted": on_declaration_submitted,
    "declaration.flagged": on_declaration_flagged,
    "provisioning.account.issued": on_account_issued,
    "notification.alert.raised": on_alert_raised,
    "notification.alert.acknowledged": on_alert_acknowledged,
    "notification.alert.escalated": on_alert_escalated,
}
