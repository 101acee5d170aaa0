"""The declaration as the API and the form receive it, and its checks.

One model for both doors (JSON ``POST /api/declarations`` and the HTML form): the same
checks, the same messages. Messages are English msgids translated at the edge
(``messages.py``); each error says which field it is about.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import (
    BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, ValidationInfo, WithJsonSchema, field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from libs.common import text as typed

from .places import load_places
from .screening import EXPOSURE_CODES, SYMPTOM_CODES

ADULT_AGE = 14  # younger children often have no ID document of their own
CODE_PATTERN = r"^[A-Za-z0-9]{4,20}$"
KEY_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
_PASSPORT = re.compile(r"^[A-Z0-9]{6,9}$")
_BIRTH = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ICT = timezone(timedelta(hours=7))
_today: list = [0.0, date.min]


def today() -> date:
    """Today in Ho Chi Minh City (looked up once a minute: the hot path calls it often)."""
    now = time.monotonic()
    if now - _today[0] > 60:
        _today[:] = [now, datetime.now(_ICT).date()]
    return _today[1]


def error(code: str, message: str, **ctx: object) -> PydanticCustomError:
    return PydanticCustomError(code, message, ctx or None)


def refused(exc: typed.TextRefused) -> PydanticCustomError:
    """A refusal of the text policy (libs/common/text.py), its field named in both languages."""
    return PydanticCustomError(exc.code, exc.en.replace("{", "(").replace("}", ")"), {"text_vi": exc.vi})


def checked(check, value: object, label: str | tuple[str, str]) -> object:  # noqa: ANN001
    """``check`` (a kind of the text policy) applied to a typed string; anything else is
    left to the field's own type check."""
    if not isinstance(value, str):
        return value
    try:
        return check(value, label)
    except typed.TextRefused as exc:
        raise refused(exc) from None


STREET = ("Số nhà, đường", "House number, street")
OTHER_SIGN = ("Dấu hiệu khác", "Another sign")
PHONE = ("Số điện thoại", "Phone number")
ID_NUMBER = ("Số giấy tờ", "ID number")


@dataclass(frozen=True)
class Birth:
    year: int
    date: date | None

    def __str__(self) -> str:
        return f"{self.date:%d/%m/%Y}" if self.date else str(self.year)

    def age(self, today: date) -> int:
        if self.date is None:
            return today.year - self.year
        return today.year - self.date.year - ((today.month, today.day) < (self.date.month, self.date.day))


def parse_birth(value: object) -> Birth:
    if isinstance(value, Birth):
        return value
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise error("birth_format", "Write the date of birth as dd/mm/yyyy, or only the year.")
    text = str(value).strip()
    if not text:
        raise error("missing", "This field is required.")
    if text.isdigit() and len(text) == 4:
        year = int(text)
        born = None
    else:
        match = _BIRTH.match(text)
        iso = None if match else _ISO.match(text)
        if match:
            day, month, year = (int(g) for g in match.groups())
        elif iso:
            year, month, day = (int(g) for g in iso.groups())
        else:
            raise error("birth_format", "Write the date of birth as dd/mm/yyyy, or only the year.")
        try:
            born = date(year, month, day)
        except ValueError:
            raise error("birth_impossible", "This date does not exist: check the day and the month.") from None
    if year < 1900:
        raise error("birth_too_old", "The year of birth must be 1900 or later.")
    if (born or date(year, 1, 1)) > today():
        raise error("birth_future", "The date of birth cannot be in the future.")
    return Birth(year, born)


BirthField = Annotated[
    Birth, PlainValidator(parse_birth), PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "dd/mm/yyyy or yyyy", "examples": ["31/12/1990", "1990"]}),
]


def kind_of(number: str) -> str:
    """The document an ID number looks like, when the visitor did not say."""
    if number.isdigit() and len(number) == 12:
        return "cccd"
    if number.isdigit() and len(number) == 9:
        return "cmnd"
    return "passport"


def normalize_phone(value: str) -> str:
    reason = typed.refusal(value)
    if reason is not None:
        raise refused(typed.TextRefused(reason, PHONE))
    compact = re.sub(r"[\s.()-]", "", value)
    if not compact.isascii():  # digits of other scripts are digits to str.isdigit
        raise error("phone", "Enter a phone number of 10 or 11 digits starting with 0, such as 0909 123 456.")
    if compact.startswith("+84"):
        compact = "0" + compact[3:]
    elif compact.startswith("84") and len(compact) == 11:
        compact = "0" + compact[2:]
    if compact.startswith("+"):
        if compact[1:].isdigit() and 8 <= len(compact) - 1 <= 15:
            return compact
    elif compact.isdigit() and compact.startswith("0") and 10 <= len(compact) <= 11:
        return compact
    raise error("phone", "Enter a phone number of 10 or 11 digits starting with 0, such as 0909 123 456.")


class PersonIn(BaseModel):
    """One person of a declaration (a family or group sends several)."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    full_name: str = Field(min_length=1, max_length=100, examples=["Nguyễn Văn An"])
    id_type: Literal["cccd", "cmnd", "passport"] | None = Field(
        default=None, description="cccd: 12 digits; cmnd: 9 digits; passport: 6 to 9 letters or digits")
    id_number: str | None = Field(default=None, max_length=20, examples=["079099012345"])
    birth: BirthField
    gender: Literal["male", "female", "other"]
    nationality: str = Field(default="Việt Nam", min_length=2, max_length=60)
    phone: str | None = Field(default=None, max_length=20, examples=["0909123456"])
    province_code: str = Field(pattern=r"^\d{1,3}$", examples=["79"])
    district_code: str = Field(pattern=r"^\d{1,4}$", examples=["760"])
    commune_code: str = Field(pattern=r"^\d{1,6}$", examples=["26734"])
    street: str = Field(min_length=1, max_length=200, examples=["12 Lý Tự Trọng"])
    symptoms: list[str] = Field(default_factory=list, max_length=len(SYMPTOM_CODES))
    symptom_other: str | None = Field(default=None, max_length=200)
    exposures: list[str] = Field(default_factory=list, max_length=len(EXPOSURE_CODES))
    vaccine_doses: int | None = Field(default=None, ge=0, le=5)

    # The text policy (libs/common/text.py) sees what was typed, before any stripping:
    # str.strip() and str.split() would silently drop U+0085 and U+001C-U+001F.
    @field_validator("full_name", mode="before")
    @classmethod
    def _typed_name(cls, value: object) -> object:
        return checked(typed.name, value, typed.FULL_NAME)

    @field_validator("nationality", mode="before")
    @classmethod
    def _typed_nationality(cls, value: object) -> object:
        return checked(typed.nationality, value, typed.NATIONALITY)

    @field_validator("street", mode="before")
    @classmethod
    def _typed_street(cls, value: object) -> object:
        return checked(typed.short_text, value, STREET)

    @field_validator("symptom_other", mode="before")
    @classmethod
    def _typed_other(cls, value: object) -> object:
        return checked(typed.short_text, value, OTHER_SIGN)

    @field_validator("id_number", mode="before")
    @classmethod
    def _typed_id(cls, value: object) -> object:
        return checked(typed.short_text, value, ID_NUMBER)

    @field_validator("full_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) < 2:
            raise error("name_short", "Write the full name as on the ID document.")
        return value

    @field_validator("id_number", "symptom_other", "phone", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return None if value is None else normalize_phone(value)

    @field_validator("symptoms")
    @classmethod
    def _symptoms(cls, value: list[str]) -> list[str]:
        if not set(value) <= SYMPTOM_CODES:
            raise error("choice", "Choose among the listed answers.")
        return sorted(set(value))

    @field_validator("exposures")
    @classmethod
    def _exposures(cls, value: list[str]) -> list[str]:
        if not set(value) <= EXPOSURE_CODES:
            raise error("choice", "Choose among the listed answers.")
        return sorted(set(value))

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        number = re.sub(r"[\s.-]", "", value).upper()
        if not number.isascii():  # digits of other scripts are digits to str.isdigit
            raise error("id_passport", "A passport number has 6 to 9 letters or digits, such as C1234567.")
        kind = info.data.get("id_type")
        if kind is None and number.isdigit() and len(number) not in (9, 12):
            raise error("id_digits", "An ID card number has 12 digits (CCCD) or 9 digits (CMND).")
        kind = kind or kind_of(number)
        if kind == "cccd" and not (len(number) == 12 and number.isdigit()):
            raise error("id_cccd", "A CCCD number has exactly 12 digits.")
        if kind == "cmnd" and not (len(number) == 9 and number.isdigit()):
            raise error("id_cmnd", "A CMND number has exactly 9 digits.")
        if kind == "passport" and not _PASSPORT.match(number):
            raise error("id_passport", "A passport number has 6 to 9 letters or digits, such as C1234567.")
        return number

    @model_validator(mode="after")
    def _identity_and_address(self) -> "PersonIn":
        if self.id_number is not None:
            self.id_type = self.id_type or kind_of(self.id_number)
        elif self.birth.age(today()) >= ADULT_AGE:
            raise error("id_missing", "Enter the number of the CCCD, CMND or passport.", field="id_number")
        else:
            self.id_type = None
        if not load_places().consistent(self.province_code, self.district_code, self.commune_code):
            raise error("address", "Choose the province, then the district, then the commune.",
                        field="commune_code")
        return self


class DeclarationIn(BaseModel):
    """A declaration at a venue: one person, or a family or group in one go."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    venue_code: str = Field(pattern=CODE_PATTERN, description="the code on the venue's poster")
    people: list[PersonIn] = Field(min_length=1, max_length=50)
    consent: bool = Field(description="the visitor accepts the legal warning and the data processing")
    idempotency_key: str | None = Field(
        default=None, pattern=KEY_PATTERN,
        description="random per form; sending the same key again returns the first answer")

    @field_validator("consent")
    @classmethod
    def _consent(cls, value: bool) -> bool:
        if not value:
            raise error("consent", "Tick the box to confirm the declaration and the use of the data.")
        return value

    @model_validator(mode="after")
    def _phone_of_the_group(self) -> "DeclarationIn":
        if self.people and self.people[0].phone is None:
            raise error("phone_missing", "Enter a phone number where the health center can reach you.",
                        field="people.0.phone")
        return self


class PassOut(BaseModel):
    id: str
    full_name: str
    result: Literal["green", "yellow", "red"]
    reasons: list[str]
    valid_until: str
    qr: str = Field(description="the text of the personal QR code (signed, no personal data)")


class DeclarationOut(BaseModel):
    submission_id: str
    duplicate: bool = Field(description="true when this idempotency key was sent before")
    rule_version: str
    declarations: list[PassOut]
