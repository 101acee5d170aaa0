"""Events of the subject requests (issue 17, item 5): a person asks what is held about them,
or asks for their declarations to be erased early on a lawful request.

- ``declaration.person.accessed``: a health officer searched, exported or erased one
  person's declarations (or was refused). Reporting writes it to the access log. It carries
  who, from where, the reference and reason given, the outcome and how many declarations;
  never the ID number or any personal data of the person.
- ``declaration.person.erased``: one person's declarations were erased by the declaration
  service. Every service holding a copy (reporting's visits, notification's alerts) erases
  its copy of these declarations (and of the gate's suspected cases of the person).
  Idempotent by construction (an erased copy stays erased). It carries the ids only: no
  ID number, not even hashed.
"""
from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from .envelope import Event, EventData, register


class PersonAccessedData(EventData):
    request_id: UUID
    action: Literal["subject.find", "subject.export", "subject.erase"]
    outcome: Literal["ok", "refused"]
    detail: str | None = Field(default=None, max_length=60)
    reference: str | None = Field(default=None, max_length=80, description="the case or request reference")
    reason: str | None = Field(default=None, max_length=500)
    row_count: int = 0
    client_address: str | None = Field(default=None, max_length=64)
    actor_id: str
    actor_username: str
    actor_name: str
    actor_role: str
    actor_jurisdiction: str


@register
class PersonAccessed(Event):
    type: Literal["declaration.person.accessed"] = "declaration.person.accessed"
    data: PersonAccessedData

    key_field: ClassVar[str] = "request_id"


class PersonErasedData(EventData):
    request_id: UUID
    declaration_ids: list[UUID] = Field(default_factory=list)
    case_ids: list[UUID] = Field(default_factory=list, description="the gate's suspected cases of the person")


@register
class PersonErased(Event):
    type: Literal["declaration.person.erased"] = "declaration.person.erased"
    data: PersonErasedData

    key_field: ClassVar[str] = "request_id"
