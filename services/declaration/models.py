"""Tables owned by the declaration service: its own copy of the venue list (from events)."""
from uuid import UUID

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class DeclarationTable(SQLModel, registry=registry()):
    pass


class Venue(DeclarationTable, table=True):
    __tablename__ = "venues"

    venue_id: UUID = Field(primary_key=True)
    code: str = Field(max_length=20, unique=True)
    unit_id: UUID = Field(index=True)
    unit_name: str = Field(max_length=300)
    name: str = Field(max_length=200)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    active: bool = True
