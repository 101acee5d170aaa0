"""Events produced by the declaration service (declarations, screening, gate actions).

- ``declaration.submitted``: every declaration, one event per person (a family declaring
  together makes one event per member, sharing ``submission_id``). Reporting counts them
  and answers exposure queries from them.
- ``declaration.flagged``: a declaration screened red (suspected). Notification raises an
  alert to the district health center and the commune focal point of the venue's commune.
- ``declaration.case_raised``: gate staff raised a suspected case by hand (circular 2.1).

The ``jurisdiction`` of each event is the commune path of the venue, which is also
``data.commune_path``.

Personal data, and why: ``declaration.submitted`` is read by every consumer of the topic
and kept by reporting, so it carries only what an exposure query must return to a
contact tracer (who was at this venue then, and how to reach them): ``full_name`` and
``phone``. It never carries the ID number, the date of birth, the home address or the
health answers. ``declaration.flagged`` and ``declaration.case_raised`` carry the full
contact details the health center needs to find the person (``person``), because the
alert is the reason those details were collected.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from .envelope import Event, EventData, register

ScreeningResult = Literal["green", "yellow", "red"]
Channel = Literal["self", "gate"]


class VenueRef(EventData):
    """Where it happened: enough for an alert's text without a venue copy."""

    venue_id: UUID
    venue_code: str
    venue_name: str
    unit_id: UUID
    unit_name: str
    address: str
    commune_path: str


class PersonDetails(EventData):
    """A person's contact details, as declared (only in flagged and case_raised events)."""

    full_name: str
    id_type: Literal["cccd", "cmnd", "passport"] | None = None
    id_number: str | None = None
    birth_date: date | None = None
    birth_year: int | None = None
    gender: Literal["male", "female", "other"] | None = None
    nationality: str | None = None
    phone: str | None = None
    street: str | None = None
    commune_code: str | None = None
    district_code: str | None = None
    province_code: str | None = None
    address_label: str | None = Field(default=None, description="the address written out, for people")


class DeclarationSubmittedData(EventData):
    declaration_id: UUID
    submission_id: UUID
    venue_id: UUID
    venue_code: str
    unit_id: UUID
    commune_path: str
    submitted_at: datetime
    valid_until: datetime
    result: ScreeningResult
    reasons: list[str] = Field(default_factory=list)
    rule_version: str
    channel: Channel = "self"
    group_size: int = Field(default=1, ge=1)
    # For exposure queries only (see the module's docstring).
    full_name: str
    phone: str | None = None


@register
class DeclarationSubmitted(Event):
    type: Literal["declaration.submitted"] = "declaration.submitted"
    data: DeclarationSubmittedData

    key_field: ClassVar[str] = "declaration_id"


class DeclarationFlaggedData(EventData):
    declaration_id: UUID
    submission_id: UUID
    venue: VenueRef
    commune_path: str
    submitted_at: datetime
    result: ScreeningResult
    reasons: list[str]
    rule_version: str
    channel: Channel = "self"
    symptoms: list[str] = Field(default_factory=list)
    symptom_other: str | None = None
    exposures: list[str] = Field(default_factory=list)
    person: PersonDetails


@register
class DeclarationFlagged(Event):
    type: Literal["declaration.flagged"] = "declaration.flagged"
    data: DeclarationFlaggedData

    key_field: ClassVar[str] = "declaration_id"


class CaseRaisedData(EventData):
    case_id: UUID
    venue: VenueRef
    commune_path: str
    raised_at: datetime
    raised_by: str = Field(description="the gate staff account id")
    raised_by_name: str
    declaration_id: UUID | None = None
    symptoms: list[str] = Field(default_factory=list)
    note: str | None = None
    person: PersonDetails


@register
class CaseRaised(Event):
    type: Literal["declaration.case_raised"] = "declaration.case_raised"
    data: CaseRaisedData

    key_field: ClassVar[str] = "case_id"
