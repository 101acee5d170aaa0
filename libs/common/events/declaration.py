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
health answers. ``declaration.flagged`` and ``declaration.case_raised`` (version 2)
carry in clear only ids, the venue, the time and the screening result (its rule ids);
everything else the health center needs to find the person (the ``person`` with ID
document, birth, address, nationality, phone and name, the symptoms, the hand-written
symptom, the exposures, the gate's note) travels in ``sealed_person``: a sealed box
(libs/common/sealed.py) to the notification service's X25519 public key (the credentials
pair), its context binding it to the event type and the declaration's or case's id, so
that a box cannot be moved to another event. Only notification, which holds the private
key, opens it; reporting and any other reader of the topic cannot.

Version 1 of both events carried those details in clear. An upcaster moves them to
``clear`` (never produced any more) so that a consumer meeting an old event during a
rolling upgrade still handles it; a consumer of before this change meeting a version 2
event refuses it as of an unknown version and sends it to the dead-letter topic (logged,
the original message kept there): upgrade notification and reporting before declaration.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field, model_serializer, model_validator

from .. import sealed
from .envelope import Event, EventData, register, upcaster

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


class SensitiveDetails(EventData):
    """What only the health center needs: sealed in ``sealed_person`` (see the module's docstring)."""

    person: PersonDetails
    symptoms: list[str] = Field(default_factory=list)
    symptom_other: str | None = None
    exposures: list[str] = Field(default_factory=list)
    note: str | None = None


class SealedPerson(EventData):
    """``SensitiveDetails`` as JSON, sealed to notification's public key (``key_id`` names it)."""

    key_id: str
    box: str


PERSON_CONTEXT = "khaibao person v1"


def person_context(event_type: str, subject_id: object) -> bytes:
    """The authenticated context of a sealed person: the event type and the declaration's or case's id."""
    return f"{PERSON_CONTEXT}|{event_type}|{subject_id}".encode()


def seal_person(recipient_public: bytes, details: SensitiveDetails, event_type: str,
                subject_id: object) -> SealedPerson:
    """Seal ``details`` for the holder of ``recipient_public`` (raw X25519 bytes)."""
    box = sealed.seal(recipient_public, details.model_dump_json(exclude_defaults=True).encode(),
                      person_context(event_type, subject_id))
    return SealedPerson(key_id=sealed.key_id(recipient_public), box=box)


class _SealedOrClear(EventData):
    sealed_person: SealedPerson | None = None
    # Only in version 1 events brought up to date (they carried the details in clear).
    clear: SensitiveDetails | None = None

    @model_validator(mode="after")
    def _one_of(self):  # noqa: ANN202
        if (self.sealed_person is None) == (self.clear is None):
            raise ValueError("exactly one of sealed_person and clear")
        return self

    @model_serializer(mode="wrap")
    def _without_the_empty_one(self, handler):  # noqa: ANN001, ANN202
        out = handler(self)
        for name in ("sealed_person", "clear"):
            if out.get(name, 0) is None:
                del out[name]
        return out


class DeclarationFlaggedData(_SealedOrClear):
    declaration_id: UUID
    submission_id: UUID
    venue: VenueRef
    commune_path: str
    submitted_at: datetime
    result: ScreeningResult
    reasons: list[str] = Field(description="the ids of the matched screening rules")
    rule_version: str
    channel: Channel = "self"


@register
class DeclarationFlagged(Event):
    type: Literal["declaration.flagged"] = "declaration.flagged"
    data: DeclarationFlaggedData

    current_version: ClassVar[int] = 2
    key_field: ClassVar[str] = "declaration_id"

    @property
    def subject_id(self) -> UUID:
        return self.data.declaration_id


class CaseRaisedData(_SealedOrClear):
    case_id: UUID
    venue: VenueRef
    commune_path: str
    raised_at: datetime
    raised_by: str = Field(description="the gate staff account id")
    raised_by_name: str
    declaration_id: UUID | None = None


@register
class CaseRaised(Event):
    type: Literal["declaration.case_raised"] = "declaration.case_raised"
    data: CaseRaisedData

    current_version: ClassVar[int] = 2
    key_field: ClassVar[str] = "case_id"

    @property
    def subject_id(self) -> UUID:
        return self.data.case_id


def _clear_of(data: dict, fields: tuple[str, ...]) -> dict:
    data["clear"] = {name: data.pop(name) for name in fields if name in data}
    return data


@upcaster("declaration.flagged", 1)
def _flagged_v1(data: dict) -> dict:
    return _clear_of(data, ("person", "symptoms", "symptom_other", "exposures"))


@upcaster("declaration.case_raised", 1)
def _case_raised_v1(data: dict) -> dict:
    return _clear_of(data, ("person", "symptoms", "note"))
