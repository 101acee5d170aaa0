"""Queries over the read models, always within the caller's jurisdiction.

The dashboards read only aggregates (``aggregates.py``, ``handlers.funnel_counts``):
a few hundred rows per page whatever the number of declarations.
"""
from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Table, and_, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree, AdminUnit
from libs.common.auth import Principal, path_within, within
from libs.common.db import Database

from . import directory
from .aggregates import (
    FLAGGED, RESULTS, VIETNAM, alert_facts, declaration_hourly, naive_utc, unit_area, unit_issued, unit_live,
    venue_day,
)
from .handlers import funnel_counts
from .models import RegistrationFact

FUNNEL_STEPS = ("submitted", "accepted", "exempt", "forwarded", "issued", "live")


@dataclass(frozen=True)
class AreaCount:
    path: str
    name: str
    registrations: int
    late: int


async def registration_counts(session: AsyncSession, tree: AdminTree, principal: Principal) -> list[AreaCount]:
    """Registrations per area one level below the caller's node (per commune for a district)."""
    rows = (await session.execute(
        select(RegistrationFact.commune_path, func.count(), func.sum(case((RegistrationFact.late, 1), else_=0)))
        .where(within(RegistrationFact.commune_path, principal.jurisdiction))
        .group_by(RegistrationFact.commune_path)
    )).all()
    areas = child_areas(tree, principal.jurisdiction)
    counts = {a.path: [0, 0] for a in areas}
    for commune_path, total, late in rows:
        for area in areas:
            if path_within(commune_path, area.path):
                counts[area.path][0] += total
                counts[area.path][1] += int(late or 0)
                break
    return [AreaCount(a.path, a.name, *counts[a.path]) for a in areas]


def child_areas(tree: AdminTree, path: str) -> list[AdminUnit]:
    """The rows of a dashboard: the areas one level below ``path`` (or the area itself)."""
    node = tree.get(path)
    if node is None:
        return []
    return list(node.children) if node.children else [node]


# --- dates -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    start: date  # local days, both included
    end: date

    @property
    def utc_bounds(self) -> tuple[datetime, datetime]:
        first = datetime.combine(self.start, time(), VIETNAM)
        after = datetime.combine(self.end + timedelta(days=1), time(), VIETNAM)
        return naive_utc(first), naive_utc(after)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def today() -> date:
    return datetime.now(VIETNAM).date()


# --- the dashboard -----------------------------------------------------------------------

@dataclass
class AreaRow:
    path: str
    name: str
    funnel: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FUNNEL_STEPS, 0))
    declarations: int = 0
    by_result: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RESULTS, 0))
    flagged: int = 0
    alerts: int = 0
    acknowledged: int = 0


@dataclass(frozen=True)
class VenueRow:
    venue_id: UUID
    code: str
    name: str
    unit_name: str
    commune_path: str
    declarations: int
    red: int
    burst: bool = False  # an "unusual burst" alert was raised at the venue in the period


@dataclass
class AlertStats:
    raised: int = 0
    acknowledged: int = 0
    escalated: int = 0
    open: int = 0
    median_minutes: float | None = None
    p90_minutes: float | None = None


@dataclass
class Dashboard:
    scope: str  # an admin-unit path or ``unit:<id>``
    label: str
    period: Period
    rows: list[AreaRow]
    totals: AreaRow
    per_day: list[tuple[date, int, int]]  # (day, declarations, flagged)
    per_hour: list[int]  # 24 local hours
    alerts: AlertStats
    venues: list[VenueRow]


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(-(-share * len(ordered) // 1)) - 1))  # nearest rank
    return round(ordered[index], 1)


async def _funnel(session: AsyncSession, path: str) -> dict[str, dict[str, int]]:
    """Per commune path: the funnel steps (cumulative, not limited to the period)."""
    per_commune: dict[str, dict[str, int]] = {}
    for commune, counts in (await funnel_counts(session, path)).items():
        row = per_commune.setdefault(commune, dict.fromkeys(FUNNEL_STEPS, 0))
        for step in ("submitted", "accepted", "exempt", "forwarded"):
            row[step] += counts[step]
    for table, step in ((unit_issued, "issued"), (unit_live, "live")):
        rows = await session.execute(select(table.c.commune_path, func.count())
                                     .where(within(table.c.commune_path, path)).group_by(table.c.commune_path))
        for commune, count in rows:
            per_commune.setdefault(commune, dict.fromkeys(FUNNEL_STEPS, 0))[step] += count
    return per_commune


def _row_for(rows: list[AreaRow], commune_path: str) -> AreaRow | None:
    return next((r for r in rows if path_within(commune_path, r.path)), None)


Reader = AsyncSession | Database
Panel = Callable[[AsyncSession], Awaitable[Any]]


async def _read(reader: Reader, *panels: Panel) -> list[Any]:
    """Run the panels of a dashboard: in the caller's transaction (a session), or each in its
    own read-only transaction at the same time (a PostgreSQL database: the slow panels of a
    large area then take the longest one's time, not their sum). SQLite has one connection."""
    if isinstance(reader, AsyncSession):
        return [await panel(reader) for panel in panels]
    if reader.sqlite:
        async with reader.transaction(readonly=True) as session:
            return [await panel(session) for panel in panels]

    async def run(panel: Panel) -> Any:  # noqa: ANN401
        async with reader.transaction(readonly=True) as session:
            return await panel(session)
    return list(await asyncio.gather(*(run(panel) for panel in panels)))


async def area_dashboard(reader: Reader, tree: AdminTree, path: str, period: Period,
                         *, venue_limit: int = 10) -> Dashboard:
    """The dashboard of an area (city, district or commune), its rows one level below it."""
    rows = [AreaRow(a.path, a.name) for a in child_areas(tree, path)]
    totals = AreaRow(path, tree.label(path))
    start, after = period.utc_bounds

    async def counts(session: AsyncSession) -> tuple:
        by_area = await session.execute(
            select(declaration_hourly.c.area, declaration_hourly.c.result,
                   func.sum(declaration_hourly.c.declarations))
            .where(declaration_hourly.c.area.in_([r.path for r in rows]),
                   declaration_hourly.c.hour >= start, declaration_hourly.c.hour < after)
            .group_by(declaration_hourly.c.area, declaration_hourly.c.result))
        return await _funnel(session, path), by_area.all(), await _timeline(session, path, period, totals)

    (funnel, by_area, (per_day, per_hour)), alerts, venues = await _read(
        reader, counts, lambda session: _alerts(session, _within(alert_facts, tree, path), period, rows),
        lambda session: _venues(session, _within(venue_day, tree, path), period, venue_limit))
    for commune, steps in funnel.items():
        row = _row_for(rows, commune)
        for step, count in steps.items():
            totals.funnel[step] += count
            if row is not None:
                row.funnel[step] += count
    index = {r.path: r for r in rows}
    for area, result, count in by_area:
        _add(index[area], result, int(count))
    _count_alerts(totals, alerts)
    return Dashboard(path, totals.name, period, rows, totals, per_day, per_hour, alerts, venues)


async def unit_dashboard(reader: Reader, tree: AdminTree, unit_id: UUID, period: Period) -> Dashboard:
    """A unit administrator's dashboard: its own venues only (a few rows: one transaction)."""
    if isinstance(reader, Database):
        async with reader.transaction(readonly=True) as session:
            return await unit_dashboard(session, tree, unit_id, period)
    session = reader
    names = await directory.unit_names(session, [unit_id])
    totals = AreaRow(unit_area(unit_id), names.get(unit_id, ""))
    live = (await session.execute(select(unit_live.c.first_at).where(unit_live.c.unit_id == unit_id))).first()
    totals.funnel["live"] = 1 if live else 0
    per_day, per_hour = await _timeline(session, unit_area(unit_id), period, totals)
    alerts = await _alerts(session, alert_facts.c.unit_id == unit_id, period, [])
    venues = await _venues(session, venue_day.c.unit_id == unit_id, period, 200)
    _count_alerts(totals, alerts)
    return Dashboard(unit_area(unit_id), totals.name, period, [], totals, per_day, per_hour, alerts, venues)


@dataclass
class VenueGlance:
    """One of a unit's gates with today's and the last seven days' declarations and reds."""
    venue_id: UUID
    code: str
    name: str
    active: bool
    today: int = 0
    today_red: int = 0
    week: int = 0
    week_red: int = 0


async def unit_glance(session: AsyncSession, unit_id: UUID, day: date | None = None) -> list[VenueGlance]:
    """Every venue of the unit (also those nobody declared at yet), read by the unit's id
    only: a unit administrator's first look at ``/unit``."""
    day = day or today()
    rows = await session.execute(select(directory.venues.c.venue_id, directory.venues.c.code, directory.venues.c.name,
                                        directory.venues.c.active)
                                 .where(directory.venues.c.unit_id == unit_id)
                                 .order_by(directory.venues.c.name, directory.venues.c.code))
    glance = {r.venue_id: VenueGlance(r.venue_id, r.code, r.name, bool(r.active)) for r in rows}
    counts = await session.execute(
        select(venue_day.c.venue_id, venue_day.c.day, venue_day.c.declarations, venue_day.c.red)
        .where(venue_day.c.unit_id == unit_id, venue_day.c.day >= day - timedelta(days=6), venue_day.c.day <= day))
    for venue_id, seen, declarations, red in counts:
        venue = glance.get(venue_id)
        if venue is None:
            continue
        venue.week += declarations
        venue.week_red += red
        if seen == day:
            venue.today += declarations
            venue.today_red += red
    return list(glance.values())


def _count_alerts(totals: AreaRow, alerts: AlertStats) -> None:
    """The totals row counts the alerts of the whole area (the rows count their communes')."""
    totals.alerts, totals.acknowledged = alerts.raised, alerts.acknowledged


def _add(row: AreaRow, result: str, count: int) -> None:
    if result == FLAGGED:
        row.flagged += count
    else:
        row.declarations += count
        row.by_result[result] = row.by_result.get(result, 0) + count


async def _timeline(session: AsyncSession, area: str, period: Period,
                    totals: AreaRow) -> tuple[list[tuple[date, int, int]], list[int]]:
    start, after = period.utc_bounds
    rows = await session.execute(
        select(declaration_hourly.c.hour, declaration_hourly.c.result, declaration_hourly.c.declarations)
        .where(declaration_hourly.c.area == area, declaration_hourly.c.hour >= start,
               declaration_hourly.c.hour < after))
    days = {d: [0, 0] for d in period.days}
    hours = [0] * 24
    for hour, result, count in rows:
        local = (hour + timedelta(hours=7))
        _add(totals, result, count)
        slot = days.setdefault(local.date(), [0, 0])
        if result == FLAGGED:
            slot[1] += count
        else:
            slot[0] += count
            hours[local.hour] += count
    return [(d, v[0], v[1]) for d, v in sorted(days.items())], hours


async def _alerts(session: AsyncSession, where: ColumnElement[bool], period: Period,
                  rows: list[AreaRow]) -> AlertStats:
    """Alerts raised in the period: counted per commune in SQL; acknowledgement times as
    median and 90th percentile (nearest rank) of the acknowledged ones."""
    start, after = period.utc_bounds
    raised = and_(where, alert_facts.c.raised_at >= start, alert_facts.c.raised_at < after)
    per_commune = await session.execute(
        select(alert_facts.c.commune_path, func.count(), func.count(alert_facts.c.acknowledged_at),
               func.count(alert_facts.c.escalated_at))
        .where(raised).group_by(alert_facts.c.commune_path))
    stats = AlertStats()
    for commune, count, acknowledged, escalated in per_commune:
        stats.raised += count
        stats.acknowledged += acknowledged
        stats.escalated += escalated
        row = _row_for(rows, commune)
        if row is not None:
            row.alerts += count
            row.acknowledged += acknowledged
    stats.open = stats.raised - stats.acknowledged
    if stats.acknowledged:
        stats.median_minutes, stats.p90_minutes = await _acknowledgement_minutes(
            session, and_(raised, alert_facts.c.acknowledged_at.is_not(None)))
    return stats


async def _acknowledgement_minutes(session: AsyncSession,
                                   acknowledged: ColumnElement[bool]) -> tuple[float | None, float | None]:
    """(median, 90th percentile) of the minutes from raised to acknowledged: computed by
    PostgreSQL over any number of alerts; on SQLite (a small deployment) in Python."""
    if session.bind.dialect.name == "postgresql":
        # date_part is double precision (EXTRACT is numeric since PostgreSQL 14: three times slower to sort).
        wait = func.greatest(0, func.date_part("epoch", alert_facts.c.acknowledged_at - alert_facts.c.raised_at)) / 60
        median, p90 = (await session.execute(
            select(func.percentile_cont(0.5).within_group(wait), func.percentile_disc(0.9).within_group(wait))
            .where(acknowledged))).one()
        return (round(float(median), 1) if median is not None else None,
                round(float(p90), 1) if p90 is not None else None)
    found = await session.execute(
        select(alert_facts.c.raised_at, alert_facts.c.acknowledged_at).where(acknowledged))
    waits = [max(0.0, (acked - raised).total_seconds() / 60) for raised, acked in found]
    return (round(statistics.median(waits), 1) if waits else None), _percentile(waits, 0.9)


def _within(table: Table, tree: AdminTree, path: str) -> ColumnElement[bool]:
    """The rows of an area in a table with ``district_path`` and ``commune_path``: equality on
    the column of the area's level, which an index serves (a ``LIKE`` prefix is not, under a
    non-C collation)."""
    if path == tree.root.path:
        return true()  # the whole deployment
    depth = path.count("/")
    if depth == 1:
        return table.c.district_path == path
    if depth == 2:
        return table.c.commune_path == path
    return within(table.c.commune_path, path)


async def _venues(session: AsyncSession, where: ColumnElement[bool], period: Period, limit: int) -> list[VenueRow]:
    """The busiest venues of the period: sums over the covering day index, then the code and
    commune of the few venues kept."""
    if limit <= 0:
        return []
    total = func.sum(venue_day.c.declarations)
    found = (await session.execute(
        select(venue_day.c.venue_id, total, func.sum(venue_day.c.red))
        .where(where, venue_day.c.day >= period.start, venue_day.c.day <= period.end)
        .group_by(venue_day.c.venue_id).order_by(total.desc(), venue_day.c.venue_id).limit(limit))).all()
    ids = [r[0] for r in found]
    labels = {venue_id: (code, commune) for venue_id, code, commune in await session.execute(
        select(venue_day.c.venue_id, func.max(venue_day.c.venue_code), func.max(venue_day.c.commune_path))
        .where(venue_day.c.venue_id.in_(ids)).group_by(venue_day.c.venue_id))} if ids else {}
    info = await directory.venues_by_id(session, ids)
    start, after = period.utc_bounds
    bursts = set((await session.execute(select(alert_facts.c.venue_id).distinct().where(
        alert_facts.c.venue_id.in_(ids), alert_facts.c.kind == "burst", alert_facts.c.raised_at >= start,
        alert_facts.c.raised_at < after))).scalars()) if ids else set()
    result = []
    for venue_id, count, reds in found:
        code, commune = labels[venue_id]
        known = info.get(venue_id)
        result.append(VenueRow(venue_id, code, known.name if known else code, known.unit_name if known else "",
                               commune, int(count), int(reds or 0), venue_id in bursts))
    return result
