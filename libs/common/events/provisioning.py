"""Events produced by the provisioning service (identity, venues)."""
from __future__ import annotations

from typing import Literal
from uuid import UUID

from .envelope import Event, EventData, register


class VenueCreatedData(EventData):
    venue_id: UUID
    code: str
    unit_id: UUID
    unit_name: str
    name: str
    address: str
    commune_path: str


@register
class VenueCreated(Event):
    type: Literal["provisioning.venue.created"] = "provisioning.venue.created"
    data: VenueCreatedData

    def partition_key(self) -> str:
        return str(self.data.venue_id)
