"""Request and response models of the intake API."""
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from libs.common import text as typed

from .text import normalize_phone
from .validation import FIELDS

PHONE_DIGITS = (9, 11)


class RegistrationIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    unit_name: str = Field(min_length=2, max_length=300)
    unit_type: str = Field(min_length=2, max_length=40)
    address: str = Field(min_length=3, max_length=300)
    commune_code: str = Field(pattern=r"^\d{1,6}$")
    tax_code: str | None = Field(default=None, max_length=20, pattern=r"^[0-9A-Za-z-]*$")
    contact_name: str = Field(min_length=2, max_length=120)
    contact_position: str | None = Field(default=None, max_length=120)
    contact_phone: str = Field(max_length=20)
    contact_email: str | None = Field(default=None, max_length=254,
                                      pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    venue_count: int = Field(default=1, ge=1, le=500)
    notes: str | None = Field(default=None, max_length=500)

    # The text policy (libs/common/text.py), on the values as they came, before stripping.
    @field_validator("unit_name", "unit_type", "address", "tax_code", "contact_position", "contact_phone",
                     mode="before")
    @classmethod
    def _typed_short(cls, value: object, info) -> object:  # noqa: ANN001
        return typed.for_model(typed.short_text, value, FIELDS[info.field_name].labels)

    @field_validator("contact_name", mode="before")
    @classmethod
    def _typed_name(cls, value: object) -> object:
        return typed.for_model(typed.name, value, FIELDS["contact_name"].labels)

    @field_validator("notes", mode="before")
    @classmethod
    def _typed_notes(cls, value: object) -> object:
        return typed.for_model(typed.free_text, value, FIELDS["notes"].labels)

    @field_validator("contact_email", mode="before")
    @classmethod
    def _typed_email(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return typed.for_model(typed.email, value, FIELDS["contact_email"].labels)

    @field_validator("contact_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        digits = normalize_phone(value)
        if digits is None:
            raise ValueError("Số điện thoại không hợp lệ / Invalid phone number")
        return digits

    @field_validator("tax_code", "contact_email", "contact_position", "notes", mode="before")
    @classmethod
    def _blank_is_none(cls, value):  # noqa: ANN001, ANN206
        return None if isinstance(value, str) and not value.strip() else value


class RegistrationOut(BaseModel):
    id: UUID
    reference: str
    unit_name: str
    unit_type: str
    commune_path: str
    receiver: Literal["district", "commune"]
    status: str
    late: bool
    submitted_at: datetime


class RegistrationCreated(RegistrationOut):
    """The unit's answer: its reference and the address of its status page (keep it)."""

    status_url: str


class RegistrationDetail(RegistrationOut):
    district_path: str
    receiver_path: str
    address: str
    tax_code: str | None
    contact_name: str
    contact_position: str | None
    contact_phone: str
    contact_email: str | None
    venue_count: int
    notes: str | None
    source: str
    review_reason: str | None
    exempt_reason: str | None
    duplicate_of: UUID | None
    list_id: UUID | None
    batch_id: UUID | None
    sent_at: datetime | None
    forwarded_at: datetime | None


class StatusOut(BaseModel):
    """What the unit sees on its status page (no contact details)."""

    reference: str
    unit_name: str
    status: str
    stage: str
    message: str
    late: bool
    submitted_at: datetime


class ReturnIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    reason: str = Field(min_length=3, max_length=500)


class DuplicateIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    duplicate_of: str = Field(min_length=3, max_length=20, description="the reference of the registration it repeats")


class ExemptIn(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    reason: Literal["superior_qr", "health_center_qr", "ncovi"]
    note: str | None = Field(default=None, max_length=500)


class ForwardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    registration_ids: list[UUID] | None = Field(default=None, description="none: every registration ready to forward")


class ListOut(BaseModel):
    id: UUID
    reference: str
    commune_path: str
    district_path: str
    count: int
    sent_at: datetime
    sent_by: str


class BatchOut(BaseModel):
    id: UUID
    reference: str
    district_path: str
    count: int
    parts: int
    forwarded_at: datetime
    forwarded_by: str


class UploadOut(BaseModel):
    id: UUID
    reference: str
    scope_path: str
    source: str
    mode: str
    status: str
    filename: str
    size: int
    phase: str | None
    processed_rows: int
    total_rows: int
    percent: int
    row_count: int
    error_count: int
    error: dict | None
    registration_count: int
    received_at: datetime
    finished_at: datetime | None


class RowErrorOut(BaseModel):
    row: int
    column: str
    message: str


class ProgressRow(BaseModel):
    path: str
    name: str
    level: Literal["district", "commune", "area"]
    registered: int
    pending: int
    reviewed: int
    accepted: int
    returned: int
    duplicate: int
    exempt: int
    sent: int
    forwarded: int
    late: int


class ProgressOut(BaseModel):
    deadline: str | None
    days_left: int | None
    rows: list[ProgressRow]
