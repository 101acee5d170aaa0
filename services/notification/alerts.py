"""Suspected-case alerts (circular 2.1): raised from declaration events, seen by their
recipients, acknowledged, escalated when nobody acknowledges them in time, erased.

Recipients of an alert at a venue of commune C in district D: the district health
center (``health_officer`` of D, or above) and the commune focal point of C. The city
DIC sees the alerts of its jurisdiction read-only; the district focal point sees an
alert once it is escalated. A unit sees the status of the alerts of its own venues.
The person's contact details are shown to the recipients only, and erased after the
retention period.

Storms (README "Alert storms"): a red declaration repeating a person's (same phone or ID
number, by their blind index: ``alert_person.py``) at a venue within the dedup window is counted in that person's
alert; past the burst threshold of reds at a venue within the burst window, the further
reds are counted in the venue's one burst alert. Each red is placed under the lock of its
venue's ``alert_venues`` row, so replicas and batches decide one venue's reds one at a time.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prometheus_client import Counter, Histogram
from sqlalchemy import and_, false, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.auth import Principal, Role, within
from libs.common.events.declaration import CaseRaised, DeclarationFlagged, PersonDetails, SensitiveDetails, VenueRef
from libs.common.events.notification import (
    AlertAcknowledged, AlertAcknowledgedData, AlertEscalated, AlertEscalatedData, AlertRaised, AlertRaisedData,
)
from libs.common.outbox import publish

from .alert_models import Alert, AlertContact, AlertDeclaration, AlertDispatch, AlertVenue
from .alert_person import PersonView, initials, open_person, person_keys, person_view
from .alert_person import SealedPersonError  # noqa: F401 - named here by the callers of raise_alert
from .settings import NotificationSettings

ALERTS_RAISED = Counter("khaibao_alerts_raised_total", "Suspected-case alerts raised", ["source"])
ALERTS_FOLDED = Counter("khaibao_alert_reds_folded_total",
                        "Red declarations counted in an existing alert (a person's repeat or a venue's burst)", ["kind"])
ALERTS_ESCALATED = Counter("khaibao_alerts_escalated_total", "Alerts escalated to the district")
ACK_SECONDS = Histogram("khaibao_alert_acknowledge_seconds", "From an alert's raising to its acknowledgement",
                        ["escalated"], buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400))
RECIPIENT_ROLES = (Role.HEALTH_OFFICER, Role.COMMUNE_FOCAL)
READER_ROLES = (Role.HEALTH_OFFICER, Role.COMMUNE_FOCAL, Role.DISTRICT_FOCAL, Role.CITY_DIC)
STATUSES = ("new", "escalated", "acknowledged")
log = logging.getLogger(__name__)


class AlertRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def district_of(tree: AdminTree, commune_path: str) -> str:
    """The district above a commune (the node at depth 1 of its path)."""
    chain = tree.ancestors(commune_path)
    if len(chain) >= 2:
        return chain[1].path
    parts = commune_path.split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 else commune_path


# --- raising -------------------------------------------------------------------------

async def lock_venue(session: AsyncSession, venue_id: UUID, now: datetime) -> AlertVenue:
    """The venue's row, created if new, locked until the transaction ends (the upsert takes the
    row lock on PostgreSQL; SQLite has one writer): the reds of one venue are placed one at a time."""
    insert = (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(AlertVenue)
    await session.execute(insert.values(venue_id=venue_id, touched_at=now).on_conflict_do_update(
        index_elements=["venue_id"], set_={"touched_at": insert.excluded.touched_at}))
    return (await session.execute(select(AlertVenue).where(AlertVenue.venue_id == venue_id)
                                  .execution_options(populate_existing=True))).scalar_one()


async def raise_alert(session: AsyncSession, settings: NotificationSettings, tree: AdminTree,
                      event: DeclarationFlagged | CaseRaised, now: datetime | None = None, *,
                      keys: list | None = None) -> Alert | None:
    """The alert of a flagged declaration or a gate case; None if it exists already.

    A flagged declaration is placed under its venue's lock (``lock_venue``): a repeat of a
    person with an alert at the venue (same phone or ID number, within the dedup window of
    their latest red) is counted in that alert; otherwise, past the burst threshold of reds
    at the venue within the burst window, it is counted in the venue's burst alert (raised
    by the first one past it); otherwise it becomes an alert of its own. Only a new alert
    is published and e-mailed. ``keys``: our private keys to open the sealed person (by
    default those of the settings, credentials.private_keys)."""
    if keys is None:
        from .credentials import private_keys

        keys = private_keys(settings)
    data = event.data
    now = now or datetime.now(UTC)
    if isinstance(event, DeclarationFlagged):
        if await session.get(AlertDeclaration, data.declaration_id) is not None:
            return None  # delivered again: already counted
        return await _place_red(session, settings, tree, event, open_person(event, keys), now)
    existing = (await session.execute(select(Alert.id).where(
        Alert.source == "case_raised", Alert.source_id == data.case_id))).scalar_one_or_none()
    if existing is not None:
        return None
    return await _new_alert(session, settings, tree, event, open_person(event, keys), now)


async def _place_red(session: AsyncSession, settings: NotificationSettings, tree: AdminTree,
                     event: DeclarationFlagged, details: SensitiveDetails, now: datetime) -> Alert | None:
    data = event.data
    at = aware(data.submitted_at)
    venue = await lock_venue(session, data.venue.venue_id, now)
    phone_key, id_key = person_keys(details.person)
    same_person = [c for c in ((Alert.phone_key == phone_key) if phone_key else None,
                               (Alert.id_key == id_key) if id_key else None) if c is not None]
    target: Alert | None = None
    if same_person:
        target = (await session.execute(select(Alert).where(
            Alert.venue_id == venue.venue_id, Alert.kind == "single", Alert.source == "flagged",
            Alert.latest_at >= at - timedelta(seconds=settings.alert_dedup_window_seconds), or_(*same_person))
            .order_by(Alert.latest_at.desc()).limit(1))).scalar_one_or_none()
    if target is None:
        recent = (await session.execute(select(func.count()).select_from(AlertDeclaration).where(
            AlertDeclaration.venue_id == venue.venue_id,
            AlertDeclaration.submitted_at > at - timedelta(seconds=settings.alert_burst_window_seconds),
            AlertDeclaration.submitted_at <= at + timedelta(seconds=settings.alert_burst_window_seconds)))).scalar_one()
        if recent >= settings.alert_burst_threshold:
            burst = await session.get(Alert, venue.burst_alert_id) if venue.burst_alert_id else None
            if burst is not None and aware(burst.latest_at or burst.raised_at) >= at - timedelta(
                    seconds=settings.alert_burst_window_seconds):
                target = burst
            else:
                burst = await _new_alert(session, settings, tree, event, details, now, kind="burst")
                venue.burst_alert_id = burst.id
                return burst
    if target is None:
        return await _new_alert(session, settings, tree, event, details, now, phone_key=phone_key, id_key=id_key)
    target.declarations += 1
    if at > aware(target.latest_at or target.raised_at):
        target.latest_at = at
    _count_red(session, target, event, details, now)
    ALERTS_FOLDED.labels(target.kind).inc()
    return None


def _count_red(session: AsyncSession, alert: Alert, event: DeclarationFlagged, details: SensitiveDetails,
               now: datetime) -> None:
    data = event.data
    session.add(AlertDeclaration(
        declaration_id=data.declaration_id, alert_id=alert.id, venue_id=data.venue.venue_id,
        submitted_at=data.submitted_at, received_at=now, channel=data.channel,
        reasons=json.dumps(list(data.reasons)), symptoms=json.dumps(list(details.symptoms)),
        initials=initials(details.person.full_name), person=details.person.model_dump_json(exclude_none=True)))


async def _new_alert(session: AsyncSession, settings: NotificationSettings, tree: AdminTree,
                     event: DeclarationFlagged | CaseRaised, details: SensitiveDetails, now: datetime, *,
                     kind: str = "single", phone_key: str | None = None, id_key: str | None = None) -> Alert:
    data = event.data
    if isinstance(event, DeclarationFlagged):
        source, source_id, raised_at = "flagged", data.declaration_id, data.submitted_at
        reasons, exposures, raised_by, note = data.reasons, details.exposures, None, details.symptom_other
    else:
        source, source_id, raised_at = "case_raised", data.case_id, data.raised_at
        reasons, exposures, raised_by, note = ["gate_case"], [], data.raised_by_name, details.note
    venue: VenueRef = data.venue
    person: PersonDetails = details.person
    commune = venue.commune_path or data.commune_path
    burst = kind == "burst"  # the burst's people are its declarations' (alert_declarations)
    alert = Alert(
        source=source, source_id=source_id, venue_id=venue.venue_id, venue_code=venue.venue_code[:40],
        venue_name=venue.venue_name[:300], unit_id=venue.unit_id, unit_name=venue.unit_name[:300],
        address=venue.address[:300], commune_path=commune, district_path=district_of(tree, commune),
        raised_at=raised_at, received_at=now, channel=getattr(data, "channel", "gate"),
        reasons=json.dumps(list(reasons)), symptoms=json.dumps([] if burst else list(details.symptoms)),
        exposures=json.dumps([] if burst else list(exposures)), raised_by_name=raised_by,
        initials="" if burst else initials(person.full_name),
        person=None if burst else person.model_dump_json(exclude_none=True),
        note=None if burst else ((note or None) and note[:2000]), status="new",
        kind=kind, declarations=1, latest_at=raised_at, phone_key=phone_key, id_key=id_key,
    )
    session.add(alert)
    await session.flush()
    if isinstance(event, DeclarationFlagged):
        _count_red(session, alert, event, details, now)
    await queue_dispatches(session, settings, alert, "raised", [alert.commune_path, alert.district_path], now)
    await publish(session, AlertRaised(producer="notification", jurisdiction=alert.commune_path, data=AlertRaisedData(
        alert_id=alert.id, source=source, source_id=source_id, venue_id=alert.venue_id, venue_code=alert.venue_code,
        unit_id=alert.unit_id, commune_path=alert.commune_path, district_path=alert.district_path,
        raised_at=raised_at, kind=kind)))
    ALERTS_RAISED.labels("burst" if burst else source).inc()
    return alert


async def queue_dispatches(session: AsyncSession, settings: NotificationSettings, alert: Alert, kind: str,
                           offices: list[str], now: datetime) -> int:
    """An e-mail and a webhook call for each office that configured them (durable, retried)."""
    count = 0
    for office in dict.fromkeys(offices):
        contact = await session.get(AlertContact, office)
        if contact is None:
            continue
        targets = []
        if contact.emails.strip():
            targets.append(("email", contact.emails.strip()))
        if contact.webhook_url:
            targets.append(("webhook", contact.webhook_url))
        for channel, target in targets:
            session.add(AlertDispatch(
                alert_id=alert.id, kind=kind, channel=channel, office_path=office, target=target,
                next_attempt_at=now, give_up_at=now + timedelta(seconds=settings.alert_give_up_seconds),
                created_at=now))
            count += 1
    return count


# --- reading -------------------------------------------------------------------------

def visible(principal: Principal):  # noqa: ANN201 - a SQL condition
    """The alerts a principal may see (server side, by jurisdiction)."""
    if principal.role in (Role.HEALTH_OFFICER, Role.COMMUNE_FOCAL, Role.CITY_DIC):
        return within(Alert.commune_path, principal.jurisdiction)
    if principal.role == Role.DISTRICT_FOCAL:
        return and_(within(Alert.commune_path, principal.jurisdiction), Alert.escalated_at.is_not(None))
    if principal.role in (Role.UNIT_ADMIN, Role.GATE_STAFF) and principal.unit_id:
        try:
            return Alert.unit_id == UUID(principal.unit_id)
        except ValueError:
            return false()
    return false()


def sees_person(principal: Principal, alert: Alert) -> bool:
    """Only the recipients see who the person is and how to reach them."""
    return principal.role in RECIPIENT_ROLES and principal.covers(alert.commune_path) and alert.person is not None


def may_acknowledge(principal: Principal, alert: Alert) -> bool:
    if alert.status == "acknowledged" or not principal.covers(alert.commune_path):
        return False
    if principal.role in RECIPIENT_ROLES:
        return True
    return principal.role == Role.DISTRICT_FOCAL and alert.escalated_at is not None


async def list_alerts(session: AsyncSession, principal: Principal, *, status: str | None = None,
                      after: datetime | None = None, limit: int = 200) -> list[Alert]:
    query = select(Alert).where(visible(principal))
    if status in STATUSES:
        query = query.where(Alert.status == status)
    if after is not None:
        query = query.where(Alert.received_at > after)
    rows = await session.execute(query.order_by(Alert.received_at.desc()).limit(limit))
    return list(rows.scalars())


async def get_alert(session: AsyncSession, principal: Principal, alert_id: UUID, *, lock: bool = False) -> Alert:
    query = select(Alert).where(Alert.id == alert_id, visible(principal))
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    alert = (await session.execute(query)).scalar_one_or_none()
    if alert is None:
        raise AlertRefused("not_found")
    return alert


async def dispatches_of(session: AsyncSession, alert_id: UUID) -> list[AlertDispatch]:
    rows = await session.execute(select(AlertDispatch).where(AlertDispatch.alert_id == alert_id)
                                 .order_by(AlertDispatch.created_at, AlertDispatch.channel))
    return list(rows.scalars())


def json_list(raw: str | None) -> list[str]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def person_of(alert: Alert) -> PersonView | None:
    return person_view(alert.person)


@dataclass
class RedView:
    """One red declaration counted in an alert, as its page lists it."""

    declaration_id: UUID
    submitted_at: datetime
    channel: str
    reasons: list[str]
    symptoms: list[str]
    initials: str
    person: PersonView | None
    erased: bool


async def declarations_of(session: AsyncSession, alert: Alert, *, with_person: bool,
                          limit: int = 500) -> list[RedView]:
    """The red declarations counted in an alert, latest first (the person's details only for
    the recipients)."""
    rows = await session.execute(select(AlertDeclaration).where(AlertDeclaration.alert_id == alert.id)
                                 .order_by(AlertDeclaration.submitted_at.desc()).limit(limit))
    return [RedView(r.declaration_id, aware(r.submitted_at), r.channel, json_list(r.reasons), json_list(r.symptoms),
                    r.initials, person_view(r.person) if with_person else None, r.erased_at is not None)
            for r in rows.scalars()]


# --- acting ---------------------------------------------------------------------------

async def acknowledge(session: AsyncSession, principal: Principal, alert_id: UUID,
                      now: datetime | None = None) -> Alert:
    alert = await get_alert(session, principal, alert_id, lock=True)
    if alert.status == "acknowledged":
        raise AlertRefused("already_acknowledged")
    if not may_acknowledge(principal, alert):
        raise AlertRefused("not_allowed")
    now = now or datetime.now(UTC)
    escalated = alert.escalated_at is not None
    alert.status, alert.acknowledged_at = "acknowledged", now
    alert.acknowledged_by_name, alert.acknowledged_by_role = principal.name[:200], str(principal.role)
    await publish(session, AlertAcknowledged(
        producer="notification", jurisdiction=alert.commune_path, data=AlertAcknowledgedData(
            alert_id=alert.id, commune_path=alert.commune_path, district_path=alert.district_path,
            raised_at=aware(alert.raised_at), acknowledged_at=now, by_role=str(principal.role), escalated=escalated)))
    ACK_SECONDS.labels(str(escalated).lower()).observe(max((now - aware(alert.received_at)).total_seconds(), 0))
    return alert


async def escalate_due(session: AsyncSession, settings: NotificationSettings, now: datetime | None = None,
                       limit: int = 100) -> int:
    """Escalate the alerts nobody acknowledged in time to the district; the number escalated."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=settings.alert_escalate_after)
    query = (select(Alert).where(Alert.status == "new", Alert.received_at <= cutoff)
             .order_by(Alert.received_at).limit(limit))
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    alerts = list((await session.execute(query)).scalars())
    for alert in alerts:
        changed = await session.execute(update(Alert).where(Alert.id == alert.id, Alert.status == "new")
                                        .values(status="escalated", escalated_at=now))
        if changed.rowcount != 1:
            continue
        alert.status, alert.escalated_at = "escalated", now
        await queue_dispatches(session, settings, alert, "escalated", [alert.district_path], now)
        await publish(session, AlertEscalated(
            producer="notification", jurisdiction=alert.commune_path, data=AlertEscalatedData(
                alert_id=alert.id, commune_path=alert.commune_path, district_path=alert.district_path,
                raised_at=aware(alert.raised_at), escalated_at=now)))
        ALERTS_ESCALATED.inc()
    return len(alerts)


async def erase_expired(session: AsyncSession, settings: NotificationSettings, now: datetime | None = None) -> int:
    """Erase the person details of alerts older than the retention period (issue 7), and of the
    red declarations counted in them; the number of alerts erased."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.retention_days)
    result = await session.execute(
        update(Alert).where(Alert.received_at < cutoff, Alert.erased_at.is_(None))
        .values(person=None, initials="", note=None, phone_key=None, id_key=None, erased_at=now))
    # The red declarations counted in alerts (the people of a burst, a person's repeats).
    await session.execute(
        update(AlertDeclaration).where(AlertDeclaration.received_at < cutoff, AlertDeclaration.erased_at.is_(None))
        .values(person=None, initials="", erased_at=now))
    return result.rowcount or 0


async def erase_person(session: AsyncSession, declaration_ids: list, case_ids: list,
                       now: datetime | None = None) -> int:
    """Erase, as retention does, the person details held for these declarations and gate
    cases (a subject's erasure request, issue 17): the alerts raised from them and the red
    declarations counted in other alerts. Idempotent; the number of alerts erased."""
    now = now or datetime.now(UTC)
    sources = [*declaration_ids, *case_ids]
    erased = 0
    for start in range(0, len(sources), 500):
        chunk = sources[start:start + 500]
        result = await session.execute(
            update(Alert).where(Alert.source_id.in_(chunk), Alert.erased_at.is_(None))
            .values(person=None, initials="", note=None, phone_key=None, id_key=None, erased_at=now))
        erased += result.rowcount or 0
    for start in range(0, len(declaration_ids), 500):
        await session.execute(
            update(AlertDeclaration).where(AlertDeclaration.declaration_id.in_(declaration_ids[start:start + 500]),
                                           AlertDeclaration.erased_at.is_(None))
            .values(person=None, initials="", erased_at=now))
    return erased
