"""Events produced by the intake service (unit registration)."""
from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from .envelope import Event, EventData, register


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


@register
class RegistrationSubmitted(Event):
    type: Literal["intake.registration.submitted"] = "intake.registration.submitted"
    data: RegistrationSubmittedData

    def partition_key(self) -> str:
        return str(self.data.registration_id)
