"""A case's own visits, found by phone: where the person declared during a window, so that
the health officer knows which venues to run the exposure query on (issue 17: an equality
lookup through a blind index).

The phone is never compared in clear: the visits store it sealed, and ``phone_index`` (the
HMAC of the normalised phone under reporting's index key, ``visits.phone_index``) is what
the query matches. The same rules as the exposure query (``exposure.py``): the health
officer and the commune focal point only, a case reference and a reason required, a window
of at most 14 days (by default the 14 days before now), only the visits within the caller's
jurisdiction (server side), and every query in the access log (``exposure.case_visits``,
with its row count, never the phone); refusals are logged by the route.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, within

from . import directory
from .accesslog import record_access
from .directory import VenueInfo, utc
from .exposure import MAX_WINDOW, PAGE_ROWS, ExposureInvalid, check_reference_and_reason, parse_local
from .visits import normal_phone, phone_index, visits

ACTION = "exposure.case_visits"


@dataclass
class CaseVisitsQuery:
    case_reference: str
    reason: str
    phone: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class CaseVisit:
    declaration_id: UUID
    submitted_at: datetime
    full_name: str | None
    result: str
    channel: str
    venue: VenueInfo | None


@dataclass
class CaseVisits:
    query: CaseVisitsQuery
    visits: list[CaseVisit]
    entry_id: UUID
    truncated: bool


def check_case_visits(case_reference: str, reason: str, phone: str, start: str, end: str,
                      now: datetime) -> CaseVisitsQuery:
    """The checked request; ``ExposureInvalid`` with the fields' messages otherwise."""
    errors: dict[str, str] = {}
    case_reference, reason = check_reference_and_reason(case_reference, reason, errors)
    digits = normal_phone(phone) or ""
    if not 9 <= len(digits) <= 15:
        errors["phone"] = "Enter the phone number of the case."
    moments: dict[str, datetime] = {}
    for name, text in (("start", start), ("end", end)):
        if text.strip():
            try:
                moments[name] = parse_local(text)
            except ValueError:
                errors[name] = "Enter a date and time."
    window_end = moments.get("end", now)
    window_start = moments.get("start", window_end - MAX_WINDOW)
    if "start" not in errors and "end" not in errors:
        if window_end <= window_start:
            errors["end"] = "The end of the window must be after its start."
        elif window_end - window_start > MAX_WINDOW:
            errors["end"] = "The window is at most 14 days."
        elif window_start > now:
            errors["start"] = "The window cannot start in the future."
    if errors:
        raise ExposureInvalid(errors)
    return CaseVisitsQuery(case_reference, reason, digits, window_start, window_end)


async def find_case_visits(session: AsyncSession, principal: Principal, query: CaseVisitsQuery, *,
                           now: datetime | None = None, client_address: str | None = None) -> CaseVisits:
    """The visits declared with the case's phone in the window, within the caller's
    jurisdiction, oldest first (at most ``PAGE_ROWS``), and the access-log entry."""
    rows = (await session.execute(
        select(visits.c.declaration_id, visits.c.submitted_at, visits.c.full_name, visits.c.result,
               visits.c.channel, visits.c.venue_id)
        .where(visits.c.phone_index == phone_index(query.phone), within(visits.c.commune_path, principal.jurisdiction),
               visits.c.submitted_at >= query.start, visits.c.submitted_at <= query.end)
        .order_by(visits.c.submitted_at, visits.c.seq).limit(PAGE_ROWS + 1))).all()
    truncated = len(rows) > PAGE_ROWS
    rows = rows[:PAGE_ROWS]
    venues = await directory.venues_by_id(session, list({r.venue_id for r in rows}))
    found = [CaseVisit(r.declaration_id, utc(r.submitted_at), r.full_name, r.result, r.channel, venues.get(r.venue_id))
             for r in rows]
    entry_id = await record_access(session, principal, ACTION, case_reference=query.case_reference,
                                   reason=query.reason, window_start=query.start, window_end=query.end,
                                   row_count=len(found), now=now, client_address=client_address)
    return CaseVisits(query, found, entry_id, truncated)
