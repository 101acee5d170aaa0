"""Events produced by the intake service (unit registration, circular 1.2 and 1.3 steps 1-2).

A registration moves submitted -> accepted | returned | duplicate | exempted; a commune
sends its accepted registrations to the district (``intake.list.sent``); the district
forwards a batch to the city DIC (``intake.batch.forwarded``), which provisioning turns
into accounts. Each event carries what its consumers need, so no consumer reads intake.
"""
from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from .envelope import Event, EventData, register

ExemptionReason = Literal["superior_qr", "health_center_qr", "ncovi"]


class RegistrationSubmittedData(EventData):
    registration_id: UUID
    reference: str
    unit_name: str
    unit_type: str
    address: str
    commune_path: str
    receiver: Literal["district", "commune"]
    tax_code: str | None = None
    contact_name: str
    contact_position: str | None = None
    contact_phone: str
    contact_email: str | None = None
    venue_count: int = Field(default=1, ge=1)
    late: bool = False
    notes: str | None = None
    # How it arrived: the public form, a list uploaded in a console, or a list sent by e-mail.
    source: Literal["form", "console", "email"] = "form"


@register
class RegistrationSubmitted(Event):
    type: Literal["intake.registration.submitted"] = "intake.registration.submitted"
    data: RegistrationSubmittedData

    key_field: ClassVar[str] = "registration_id"


class RegistrationReviewedData(EventData):
    registration_id: UUID
    reference: str
    commune_path: str
    reviewer_path: str
    reason: str | None = None


@register
class RegistrationAccepted(Event):
    type: Literal["intake.registration.accepted"] = "intake.registration.accepted"
    data: RegistrationReviewedData

    key_field: ClassVar[str] = "registration_id"


@register
class RegistrationReturned(Event):
    """Sent back to the unit with a reason (``data.reason`` is required by intake)."""

    type: Literal["intake.registration.returned"] = "intake.registration.returned"
    data: RegistrationReviewedData

    key_field: ClassVar[str] = "registration_id"


class RegistrationDuplicateData(EventData):
    registration_id: UUID
    reference: str
    commune_path: str
    duplicate_of: UUID


@register
class RegistrationMarkedDuplicate(Event):
    type: Literal["intake.registration.duplicate_marked"] = "intake.registration.duplicate_marked"
    data: RegistrationDuplicateData

    key_field: ClassVar[str] = "registration_id"


class RegistrationExemptedData(EventData):
    registration_id: UUID
    reference: str
    commune_path: str
    reason: ExemptionReason
    note: str | None = None


@register
class RegistrationExempted(Event):
    """Recorded with its reason, counted, never forwarded (circular 1.2, 2.2)."""

    type: Literal["intake.registration.exempted"] = "intake.registration.exempted"
    data: RegistrationExemptedData

    key_field: ClassVar[str] = "registration_id"


class ListSentData(EventData):
    list_id: UUID
    reference: str
    commune_path: str
    district_path: str
    registration_ids: list[UUID]


@register
class ListSent(Event):
    """A commune sends its accepted registrations to the district focal point."""

    type: Literal["intake.list.sent"] = "intake.list.sent"
    data: ListSentData

    key_field: ClassVar[str] = "commune_path"


class ForwardedUnit(EventData):
    registration_id: UUID
    reference: str
    unit_name: str
    unit_type: str
    address: str
    commune_path: str
    tax_code: str | None = None
    contact_name: str
    contact_position: str | None = None
    contact_phone: str
    contact_email: str | None = None
    venue_count: int = Field(default=1, ge=1)
    late: bool = False


class BatchForwardedData(EventData):
    batch_id: UUID
    reference: str
    district_path: str
    units: list[ForwardedUnit]
    # A large batch travels as several events (a broker caps the message size): part
    # ``part`` of ``parts``, each with its own units; ``total_units`` counts all parts.
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)
    total_units: int | None = None
    # When the district forwarded it (the event may be published or read later, e.g. the
    # demo week's past batches); absent from older events: their ``occurred_at`` then.
    forwarded_at: datetime | None = None


@register
class BatchForwarded(Event):
    """The district forwards a batch to the city DIC through the Support Channel (1.3 step 2)."""

    type: Literal["intake.batch.forwarded"] = "intake.batch.forwarded"
    data: BatchForwardedData

    key_field: ClassVar[str] = "district_path"


class UploadReceivedData(EventData):
    upload_id: UUID
    reference: str
    scope_path: str          # the office that reviews it (the district for an e-mailed list)
    source: Literal["console", "email"]
    filename: str
    row_count: int = 0


@register
class UploadReceived(Event):
    """A list file arrived (uploaded, or e-mailed to the district's address) and awaits review."""

    type: Literal["intake.upload.received"] = "intake.upload.received"
    data: UploadReceivedData

    key_field: ClassVar[str] = "upload_id"
