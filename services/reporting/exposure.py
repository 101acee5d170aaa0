"""The exposure query (issue 6): who declared at a venue during a time window, with contact
details, for the health officers tracing the contacts of a case.

Rules, checked on the server before anything is read:

- who: ``EXPOSURE_ROLES`` — the district health center officer (its district, or the
  city for a city-level health account) and the commune focal point (its commune, which
  receives the alerts of its area). The city DIC and the district culture division do not
  trace contacts; they read the access log.
- a case reference and a reason are required (refused with a message, nothing run);
- a venue (by its printed code or from the list of the caller's venues) or a declaration
  (its id: the venue of that declaration, and by default two hours either side of it);
- a window of at most ``MAX_WINDOW`` (the 14-day incubation period), not starting in
  the future;
- a venue or declaration outside the caller's jurisdiction is answered like an unknown
  one (no existence leak);
- every query and export is in the access log, granted (with its row count) or refused
  (an incomplete form, an unknown venue, outside the jurisdiction, a role not permitted:
  the routes write those refusals, see ``invalid_detail``).

Use cases never commit: the route's transaction writes the log entry together with the
read, and commits also for a refusal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role

from . import directory
from .accesslog import record_access
from .directory import VenueInfo, utc
from .visits import visits

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
EXPOSURE_ROLES = (Role.HEALTH_OFFICER, Role.COMMUNE_FOCAL)
MAX_WINDOW = timedelta(days=14)
DECLARATION_MARGIN = timedelta(hours=2)
PAGE_ROWS = 500          # shown on the page; the export holds them all
EXPORT_ROWS = 100_000


@dataclass
class ExposureForm:
    """What the officer typed (strings, as posted)."""

    case_reference: str = ""
    reason: str = ""
    venue: str = ""            # a venue id from the list, or a printed code
    declaration_id: str = ""
    start: str = ""            # local time, "YYYY-MM-DDTHH:MM" (datetime-local)
    end: str = ""


@dataclass
class ExposureQuery:
    """A checked request."""

    case_reference: str
    reason: str
    venue_id: UUID | None
    venue_code: str | None
    declaration_id: UUID | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class Contact:
    declaration_id: UUID
    submitted_at: datetime
    full_name: str | None
    phone: str | None
    result: str
    channel: str
    group_size: int
    is_index: bool


@dataclass
class ExposureResult:
    venue: VenueInfo
    start: datetime
    end: datetime
    contacts: list[Contact]
    total: int
    erased: int
    query: ExposureQuery
    entry_id: UUID | None = None
    truncated: bool = False


@dataclass
class ExposureRefused:
    """Unknown, or outside the caller's jurisdiction (the caller is told the same)."""

    message: str
    errors: dict[str, str] = field(default_factory=dict)


def invalid_detail(errors: dict[str, str]) -> str:
    """The access log's code for an incomplete or wrong form."""
    if "case_reference" in errors:
        return "no_case_reference"
    if "reason" in errors:
        return "no_reason"
    return "bad_input"


class ExposureInvalid(ValueError):
    """The form is incomplete or wrong: ``errors`` maps a field to its message id."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


def parse_local(value: str) -> datetime:
    """``2021-06-20T08:30`` (or with a space, or with seconds) in Vietnam time -> aware UTC."""
    text = value.strip().replace(" ", "T")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC)


def local_input(moment: datetime | None) -> str:
    """For a datetime-local control."""
    return utc(moment).astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M") if moment else ""


def local_text(moment: datetime | None) -> str:
    return utc(moment).astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M") if moment else ""


def check_reference_and_reason(case_reference: str, reason: str, errors: dict[str, str]) -> tuple[str, str]:
    """The case reference and reason every query of personal data requires, blanks folded;
    what is missing or too long goes into ``errors``."""
    case_reference, reason = " ".join(case_reference.split()), " ".join(reason.split())
    if not case_reference:
        errors["case_reference"] = "Enter the case reference (the number of the case file)."
    elif len(case_reference) > 60:
        errors["case_reference"] = "The case reference is at most 60 characters."
    if not reason:
        errors["reason"] = "Enter the reason for this query."
    elif len(reason) < 10:
        errors["reason"] = "Write the reason in a full sentence (at least 10 characters)."
    elif len(reason) > 500:
        errors["reason"] = "The reason is at most 500 characters."
    return case_reference, reason


def check_form(form: ExposureForm, now: datetime) -> ExposureQuery:
    errors: dict[str, str] = {}
    case_reference, reason = check_reference_and_reason(form.case_reference, form.reason, errors)

    venue_id = venue_code = declaration_id = None
    venue_text, declaration_text = form.venue.strip(), form.declaration_id.strip()
    if venue_text and declaration_text:
        errors["venue"] = "Choose a venue or give a declaration number, not both."
    elif venue_text:
        try:
            venue_id = UUID(venue_text)
        except ValueError:
            code = directory.normalise_venue_code(venue_text)
            if len(code) != 10:
                errors["venue"] = "A venue code has 10 letters and digits, as printed on the poster."
            else:
                venue_code = code
    elif declaration_text:
        try:
            declaration_id = UUID(declaration_text)
        except ValueError:
            errors["declaration_id"] = "The declaration number is not valid."
    else:
        errors["venue"] = "Choose a venue or give a declaration number."

    start = end = None
    for name, text in (("start", form.start), ("end", form.end)):
        if text.strip():
            try:
                moment = parse_local(text)
            except ValueError:
                errors[name] = "Enter a date and time, for example 20/06/2021 08:00."
                continue
            if name == "start":
                start = moment
            else:
                end = moment
    if declaration_id is None and "start" not in errors and "end" not in errors:
        if start is None:
            errors["start"] = "Enter the start of the time window."
        if end is None:
            errors["end"] = "Enter the end of the time window."
    if start is not None and end is not None:
        if end <= start:
            errors["end"] = "The end of the window must be after its start."
        elif end - start > MAX_WINDOW:
            errors["end"] = "The window is at most 14 days."
    if start is not None and start > now:
        errors["start"] = "The window cannot start in the future."
    if errors:
        raise ExposureInvalid(errors)
    return ExposureQuery(case_reference, reason, venue_id, venue_code, declaration_id, start, end)


async def _refuse(session: AsyncSession, principal: Principal, query: ExposureQuery, action: str, scope: str | None,
                  venue: VenueInfo | None, now: datetime, client_address: str | None) -> ExposureRefused:
    # Unknown, or existing outside the caller's jurisdiction: both attempts are logged (the
    # caller is answered the same; the log tells the two apart for the auditors).
    if scope is not None:
        detail = "outside_jurisdiction"
    else:
        detail = "unknown_declaration" if query.declaration_id is not None else "unknown_venue"
    await record_access(session, principal, action, scope_path=scope, outcome="refused",
                        detail=detail, case_reference=query.case_reference, reason=query.reason,
                        venue_id=venue.venue_id if venue else query.venue_id,
                        declaration_id=query.declaration_id, window_start=query.start, window_end=query.end,
                        now=now, client_address=client_address)
    if query.declaration_id is not None:
        return ExposureRefused("No declaration with this number in your area.",
                               {"declaration_id": "No declaration with this number in your area."})
    return ExposureRefused("No venue with this code in your area.", {"venue": "No venue with this code in your area."})


async def run_exposure(session: AsyncSession, principal: Principal, query: ExposureQuery, *, export: bool = False,
                       now: datetime | None = None,
                       client_address: str | None = None) -> ExposureResult | ExposureRefused:
    """Run a checked query within the caller's jurisdiction and log it (``exposure.query``
    or ``exposure.export``). Page queries return at most ``PAGE_ROWS`` contacts."""
    now = now or datetime.now(UTC)
    action = "exposure.export" if export else "exposure.query"
    start, end = query.start, query.end
    index_id = None
    venue: VenueInfo | None = None
    if query.declaration_id is not None:
        row = (await session.execute(select(visits.c.venue_id, visits.c.submitted_at, visits.c.commune_path)
                                     .where(visits.c.declaration_id == query.declaration_id))).first()
        if row is None:
            return await _refuse(session, principal, query, action, None, None, now, client_address)
        if not principal.covers(row.commune_path):
            return await _refuse(session, principal, query, action, row.commune_path, None, now, client_address)
        index_id = query.declaration_id
        at = utc(row.submitted_at)
        start = start or at - DECLARATION_MARGIN
        end = end or at + DECLARATION_MARGIN
        if end <= start or end - start > MAX_WINDOW:
            raise ExposureInvalid({"end": "The window is at most 14 days."} if end > start
                                  else {"end": "The end of the window must be after its start."})
        venue = (await directory.venues_by_id(session, [row.venue_id])).get(row.venue_id)
        if venue is None:  # the declaration arrived before its venue: a minimal venue
            venue = VenueInfo(row.venue_id, "", "", "", row.venue_id, "", row.commune_path, True, at)
    else:
        if query.venue_id is not None:
            venue = (await directory.venues_by_id(session, [query.venue_id])).get(query.venue_id)
        else:
            venue = await directory.venue_by_code(session, query.venue_code or "")
        if venue is None:
            return await _refuse(session, principal, query, action, None, None, now, client_address)
        if not principal.covers(venue.commune_path):
            return await _refuse(session, principal, query, action, venue.commune_path, venue, now, client_address)
    assert start is not None and end is not None

    limit = EXPORT_ROWS if export else PAGE_ROWS
    rows = (await session.execute(
        select(visits.c.declaration_id, visits.c.submitted_at, visits.c.full_name, visits.c.phone,
               visits.c.result, visits.c.channel, visits.c.group_size)
        .where(visits.c.venue_id == venue.venue_id, visits.c.submitted_at >= start, visits.c.submitted_at <= end)
        .order_by(visits.c.submitted_at, visits.c.seq).limit(limit + 1)
    )).all()
    truncated = len(rows) > limit
    rows = rows[:limit]
    contacts = [Contact(r.declaration_id, utc(r.submitted_at), r.full_name, r.phone, r.result, r.channel,
                        r.group_size, r.declaration_id == index_id) for r in rows]
    erased = sum(1 for c in contacts if c.full_name is None)
    entry_id = await record_access(
        session, principal, action, scope_path=venue.commune_path, case_reference=query.case_reference,
        reason=query.reason, venue_id=venue.venue_id,
        venue_name=" — ".join(p for p in (venue.unit_name, venue.name) if p) or None,
        declaration_id=query.declaration_id, window_start=start, window_end=end, row_count=len(contacts), now=now,
        client_address=client_address)
    return ExposureResult(venue, start, end, contacts, len(contacts), erased, query, entry_id, truncated)


async def venue_choices(session: AsyncSession, principal: Principal, limit: int = 2000) -> list[VenueInfo]:
    """The venues of the caller's jurisdiction for the form's list (active first)."""
    found = await directory.venues_within(session, principal.jurisdiction, limit=limit)
    return sorted(found, key=lambda v: (not v.active, v.unit_name, v.name))
