"""Request and response models of the provisioning API."""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    must_change_password: bool


class MeOut(BaseModel):
    account_id: str
    username: str
    name: str
    role: str
    jurisdiction: str
    unit_id: str | None


class VenueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    unit_id: UUID
    code: str
    name: str
    address: str
    commune_path: str
    active: bool


class BatchOut(BaseModel):
    id: UUID
    reference: str
    district_path: str
    unit_count: int
    forwarded_at: datetime
    pending: int
    issued: int
    failed: int
    with_email: int
    active_job: UUID | None


class ForwardedUnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    registration_id: UUID
    reference: str
    unit_name: str
    commune_path: str
    venue_count: int
    status: str
    unit_id: UUID | None
    error: str | None


class BatchDetailOut(BatchOut):
    units: list[ForwardedUnitOut]


class IssueIn(BaseModel):
    registration_id: UUID | None = None


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    batch_id: UUID
    registration_id: UUID | None
    district_path: str
    status: str
    total: int
    done: int
    skipped: int
    failed: int
    with_email: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    username: str
    name: str
    role: str
    disabled: bool
    must_change_password: bool
    credentials_status: str | None


class UnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    address: str
    commune_path: str
    reference: str | None
    unit_type: str | None
    registration_id: UUID | None


class UnitDetailOut(UnitOut):
    venues: list[VenueOut]
    accounts: list[AccountOut]


class StaffIn(BaseModel):
    name: str = Field(min_length=2, max_length=200)


class OneTimePasswordOut(BaseModel):
    """Shown once to the unit administrator; never stored, never sent again."""

    account_id: UUID
    username: str
    password: str


class ActionOut(BaseModel):
    ok: bool = True
    message: str
