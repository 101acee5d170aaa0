"""Suspected-case alerts (circular 2.1): raised from declaration events, seen by their
recipients, acknowledged, escalated when nobody acknowledges them in time, erased.

Recipients of an alert at a venue of commune C in district D: the district health
center (``health_officer`` of D, or above) and the commune focal point of C. The city
DIC sees the alerts of its jurisdiction read-only; the district focal point sees an
alert once it is escalated. A unit sees the status of the alerts of its own venues.
The person's contact details are shown to the recipients only, and erased after the
retention period.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prometheus_client import Counter, Histogram
from sqlalchemy import and_, false, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.auth import Principal, Role, within
from libs.common.events.declaration import CaseRaised, DeclarationFlagged, PersonDetails, VenueRef
from libs.common.events.notification import (
    AlertAcknowledged, AlertAcknowledgedData, AlertEscalated, AlertEscalatedData, AlertRaised, AlertRaisedData,
)
from libs.common.outbox import publish

from .alert_models import Alert, AlertContact, AlertDispatch
from .settings import NotificationSettings

ALERTS_RAISED = Counter("khaibao_alerts_raised_total", "Suspected-case alerts raised", ["source"])
ALERTS_ESCALATED = Counter("khaibao_alerts_escalated_total", "Alerts escalated to the district")
ACK_SECONDS = Histogram("khaibao_alert_acknowledge_seconds", "From an alert's raising to its acknowledgement",
                        ["escalated"], buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400))
RECIPIENT_ROLES = (Role.HEALTH_OFFICER, Role.COMMUNE_FOCAL)
READER_ROLES = (Role.HEALTH_OFFICER, Role.COMMUNE_FOCAL, Role.DISTRICT_FOCAL, Role.CITY_DIC)
STATUSES = ("new", "escalated", "acknowledged")


class AlertRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def initials(full_name: str) -> str:
    """``Nguyễn Văn An`` -> ``N.V.A.`` (what a unit may see of the person)."""
    return "".join(f"{w[0].upper()}." for w in full_name.split() if w[:1].isalpha())[:20]


def district_of(tree: AdminTree, commune_path: str) -> str:
    """The district above a commune (the node at depth 1 of its path)."""
    chain = tree.ancestors(commune_path)
    if len(chain) >= 2:
        return chain[1].path
    parts = commune_path.split("/")
    return "/".join(parts[:2]) if len(parts) >= 2 else commune_path


# --- raising -------------------------------------------------------------------------

async def raise_alert(session: AsyncSession, settings: NotificationSettings, tree: AdminTree,
                      event: DeclarationFlagged | CaseRaised, now: datetime | None = None) -> Alert | None:
    """The alert of a flagged declaration or a gate case; None if it exists already."""
    data = event.data
    if isinstance(event, DeclarationFlagged):
        source, source_id, raised_at = "flagged", data.declaration_id, data.submitted_at
        reasons, exposures, raised_by, note = data.reasons, data.exposures, None, data.symptom_other
    else:
        source, source_id, raised_at = "case_raised", data.case_id, data.raised_at
        reasons, exposures, raised_by, note = ["gate_case"], [], data.raised_by_name, data.note
    existing = (await session.execute(select(Alert.id).where(
        Alert.source == source, Alert.source_id == source_id))).scalar_one_or_none()
    if existing is not None:
        return None
    venue: VenueRef = data.venue
    person: PersonDetails = data.person
    commune = venue.commune_path or data.commune_path
    now = now or datetime.now(UTC)
    alert = Alert(
        source=source, source_id=source_id, venue_id=venue.venue_id, venue_code=venue.venue_code[:40],
        venue_name=venue.venue_name[:300], unit_id=venue.unit_id, unit_name=venue.unit_name[:300],
        address=venue.address[:300], commune_path=commune, district_path=district_of(tree, commune),
        raised_at=raised_at, received_at=now, channel=getattr(data, "channel", "gate"),
        reasons=json.dumps(list(reasons)), symptoms=json.dumps(list(data.symptoms)),
        exposures=json.dumps(list(exposures)), raised_by_name=raised_by, initials=initials(person.full_name),
        person=person.model_dump_json(exclude_none=True), note=(note or None) and note[:2000], status="new",
    )
    session.add(alert)
    await session.flush()
    await queue_dispatches(session, settings, alert, "raised", [alert.commune_path, alert.district_path], now)
    await publish(session, AlertRaised(producer="notification", jurisdiction=alert.commune_path, data=AlertRaisedData(
        alert_id=alert.id, source=source, source_id=source_id, venue_id=alert.venue_id, venue_code=alert.venue_code,
        unit_id=alert.unit_id, commune_path=alert.commune_path, district_path=alert.district_path,
        raised_at=raised_at)))
    ALERTS_RAISED.labels(source).inc()
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


@dataclass
class PersonView:
    full_name: str
    phone: str | None
    id_number: str | None
    birth: str | None
    gender: str | None
    address: str | None


def json_list(raw: str | None) -> list[str]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def person_of(alert: Alert) -> PersonView | None:
    if not alert.person:
        return None
    p = PersonDetails.model_validate_json(alert.person)
    birth = p.birth_date.strftime("%d/%m/%Y") if p.birth_date else (str(p.birth_year) if p.birth_year else None)
    address = p.address_label or p.street
    return PersonView(p.full_name, p.phone, p.id_number, birth, p.gender, address)


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
    """Erase the person details of alerts older than the retention period (issue 7)."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.retention_days)
    result = await session.execute(
        update(Alert).where(Alert.received_at < cutoff, Alert.erased_at.is_(None))
        .values(person=None, initials="", note=None, erased_at=now))
    return result.rowcount or 0
