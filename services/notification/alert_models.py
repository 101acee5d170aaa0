"""Tables of suspected-case alerts (circular 2.1): the alerts, the offices' alert contacts,
and the durable e-mail and webhook deliveries of each alert.

An alert is unique on (``source``, ``source_id``): the same flagged declaration or gate
case delivered twice makes one alert. Red declarations do not all make alerts of their
own (``alerts.py``, "storms"): the reds of one person at one venue within the dedup
window fold into one alert with a count, and beyond the burst threshold the reds of a
venue fold into one ``burst`` alert; every red declaration that reached an alert is a
row of ``alert_declarations``, so the alert's page lists them. The person's contact details (``person``, JSON)
are shown only to the recipients and erased after the retention period; the venue, the
times and the status stay for the statistics.

Encrypted at rest (issue 17, libs/common/fieldcrypt.py): what the sealed bus event carried
of the person (``person``: name, ID number, phone, birth, address...; ``symptoms``,
``exposures`` and the hand-written ``note``) is stored sealed with notification's key ring
(``sealed_column``) and opened on read; a copied disk or backup shows none of it. A repeat
is recognised by ``phone_key`` and ``id_key``, the blind indexes (``alert_person.py``).
"""
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field

from libs.common.fieldcrypt import SealedString

from .models import NotificationTable

RING = "notification"


def sealed_column(context: str, length: int, *, nullable: bool = True, default: str | None = None) -> Column:
    """A text column stored sealed with notification's ring (``length``: the plain length)."""
    return Column(SealedString(RING, context, length), nullable=nullable, default=default)


class Alert(NotificationTable, table=True):
    """A suspected case for the district health center and the commune focal point.

    ``status``: ``new`` -> ``acknowledged``; or ``new`` -> ``escalated`` (nobody
    acknowledged it in time: the district is told) -> ``acknowledged``.
    """

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("source", "source_id", name="uq_alerts_source"),)

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    source: str = Field(max_length=20)  # flagged | case_raised
    source_id: UUID
    venue_id: UUID
    venue_code: str = Field(max_length=40)
    venue_name: str = Field(max_length=300)
    unit_id: UUID = Field(index=True)
    unit_name: str = Field(max_length=300)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    district_path: str = Field(max_length=60, index=True)
    raised_at: datetime
    received_at: datetime = Field(index=True)
    channel: str = Field(default="self", max_length=10)
    reasons: str = Field(default="[]", max_length=2000)  # JSON list of screening reason codes
    symptoms: str = Field(default="[]", sa_column=sealed_column("alerts.symptoms", 2000, nullable=False))  # JSON
    exposures: str = Field(default="[]", sa_column=sealed_column("alerts.exposures", 2000, nullable=False))  # JSON
    raised_by_name: str | None = Field(default=None, max_length=200)
    initials: str = Field(default="", max_length=20)
    person: str | None = Field(default=None, sa_column=sealed_column("alerts.person", 4000))  # JSON, erased
    note: str | None = Field(default=None, sa_column=sealed_column("alerts.note", 2000))
    status: str = Field(default="new", max_length=20, index=True)
    acknowledged_at: datetime | None = None
    acknowledged_by_name: str | None = Field(default=None, max_length=200)
    acknowledged_by_role: str | None = Field(default=None, max_length=30)
    escalated_at: datetime | None = None
    erased_at: datetime | None = None
    # Storms: ``single`` (one person) or ``burst`` (the unusual burst of a venue); the number
    # of red declarations folded in and the latest one's time; the blind indexes (HMAC under
    # the ring's index key, alert_person.person_keys) of the person's phone and ID number,
    # to recognise a repeat (erased with the person's details).
    kind: str = Field(default="single", max_length=10)
    declarations: int = 1
    latest_at: datetime | None = None
    phone_key: str | None = Field(default=None, max_length=64)
    id_key: str | None = Field(default=None, max_length=64)


class AlertDeclaration(NotificationTable, table=True):
    """A red declaration and the alert it is counted in (its own, a person's or a burst's):
    the same details as an alert shows of its person, erased with them after retention."""

    __tablename__ = "alert_declarations"

    declaration_id: UUID = Field(primary_key=True)
    alert_id: UUID = Field(index=True)
    venue_id: UUID
    submitted_at: datetime
    received_at: datetime
    channel: str = Field(default="self", max_length=10)
    reasons: str = Field(default="[]", max_length=2000)
    symptoms: str = Field(default="[]", sa_column=sealed_column("alert_declarations.symptoms", 2000, nullable=False))
    initials: str = Field(default="", max_length=20)
    person: str | None = Field(default=None, sa_column=sealed_column("alert_declarations.person", 4000))  # JSON
    erased_at: datetime | None = None


class AlertVenue(NotificationTable, table=True):
    """One row per venue that had a red: locked (upsert) while a red of the venue is placed,
    so that replicas and batches decide one at a time; names the venue's current burst."""

    __tablename__ = "alert_venues"

    venue_id: UUID = Field(primary_key=True)
    burst_alert_id: UUID | None = None
    touched_at: datetime


class AlertContact(NotificationTable, table=True):
    """Where an office (a district or a commune) wants its alerts: e-mails and a webhook."""

    __tablename__ = "alert_contacts"

    office_path: str = Field(primary_key=True, max_length=60)
    emails: str = Field(default="", max_length=2000)  # one address per line
    webhook_url: str | None = Field(default=None, max_length=500)
    webhook_secret: str | None = Field(default=None, max_length=100)
    updated_at: datetime
    updated_by_name: str = Field(default="", max_length=200)


class AlertDispatch(NotificationTable, table=True):
    """One e-mail or webhook call of an alert to one office, retried with backoff until sent."""

    __tablename__ = "alert_dispatches"
    __table_args__ = (UniqueConstraint("alert_id", "kind", "channel", "office_path", name="uq_alert_dispatch"),)

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    alert_id: UUID = Field(index=True)
    kind: str = Field(max_length=20)  # raised | escalated
    channel: str = Field(max_length=10)  # email | webhook
    office_path: str = Field(max_length=60)
    target: str = Field(max_length=2000)  # the addresses (one a line) or the URL
    status: str = Field(default="queued", max_length=20, index=True)  # queued | sent | failed
    attempts: int = 0
    next_attempt_at: datetime
    give_up_at: datetime
    last_error: str | None = Field(default=None, max_length=200)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: float | None = None
    created_at: datetime
    sent_at: datetime | None = None


class AlertAccess(NotificationTable, table=True):
    """Who opened the person details of which alert, and when (never the details)."""

    __tablename__ = "alert_access"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    alert_id: UUID = Field(index=True)
    account_id: str = Field(max_length=64)
    account_name: str = Field(max_length=200)
    role: str = Field(max_length=30)
    action: str = Field(max_length=20)  # viewed | acknowledged
    at: datetime
