"""Tables owned by the provisioning service: accounts, units, venues."""
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class ProvisioningTable(SQLModel, registry=registry()):
    pass


class Account(ProvisioningTable, table=True):
    __tablename__ = "accounts"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    username: str = Field(max_length=80, unique=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=30)
    jurisdiction: str = Field(max_length=60, index=True)
    unit_id: UUID | None = Field(default=None, index=True)
    password_hash: str = Field(max_length=200)
    must_change_password: bool = True
    failed_signins: int = 0
    locked_until: datetime | None = None
    disabled: bool = False
    created_at: datetime


class Unit(ProvisioningTable, table=True):
    __tablename__ = "units"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str = Field(max_length=300)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    registration_id: UUID | None = Field(default=None, unique=True)
    created_at: datetime


class Venue(ProvisioningTable, table=True):
    __tablename__ = "venues"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    unit_id: UUID = Field(index=True)
    code: str = Field(max_length=20, unique=True)
    name: str = Field(max_length=200)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    active: bool = True
    created_at: datetime
