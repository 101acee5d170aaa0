"""Request and response models of the intake API."""
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

    @field_validator("contact_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        digits = "".join(c for c in value if c.isdigit())
        if not (PHONE_DIGITS[0] <= len(digits) <= PHONE_DIGITS[1]) or not value.lstrip("+").replace(" ", "").replace(".", "").isdigit():
            raise ValueError("Số điện thoại không hợp lệ / Invalid phone number")
        return digits

    @field_validator("tax_code", "contact_email", "contact_position", mode="before")
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
