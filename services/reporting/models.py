"""Read models of the reporting service, built from events only."""
from datetime import datetime
from uuid import UUID

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class ReportingTable(SQLModel, registry=registry()):
    pass


class RegistrationFact(ReportingTable, table=True):
    __tablename__ = "registration_facts"

    registration_id: UUID = Field(primary_key=True)
    commune_path: str = Field(max_length=60, index=True)
    unit_type: str = Field(max_length=40)
    receiver: str = Field(max_length=10)
    late: bool = False
    submitted_at: datetime
