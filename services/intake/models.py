"""Tables owned by the intake service."""
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class IntakeTable(SQLModel, registry=registry()):
    pass


class Registration(IntakeTable, table=True):
    __tablename__ = "registrations"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    reference: str = Field(max_length=20, unique=True)
    unit_name: str = Field(max_length=300)
    unit_type: str = Field(max_length=40)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    receiver: str = Field(max_length=10)
    receiver_path: str = Field(max_length=60, index=True)
    tax_code: str | None = Field(default=None, max_length=20)
    contact_name: str = Field(max_length=120)
    contact_position: str | None = Field(default=None, max_length=120)
    contact_phone: str = Field(max_length=20)
    contact_email: str | None = Field(default=None, max_length=254)
    venue_count: int = 1
    status: str = Field(default="submitted", max_length=20)
    late: bool = False
    submitted_at: datetime
