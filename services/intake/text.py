"""Small text helpers: matching keys, phone numbers, local time, bilingual messages."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

# Ho Chi Minh City has no daylight saving time: UTC+7 all year.
LOCAL_TZ = timezone(timedelta(hours=7), "ICT")
_SPACES = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Msg:
    """A message for people, in Vietnamese (first) and English."""

    vi: str
    en: str

    def format(self, **params: object) -> Msg:
        return Msg(self.vi.format(**params), self.en.format(**params))

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.vi

    def both(self) -> str:
        return f"{self.vi} / {self.en}"

    def as_dict(self) -> dict[str, str]:
        return {"vi": self.vi, "en": self.en}


@lru_cache(maxsize=8192)
def fold(value: str) -> str:
    """Lower case, no diacritics (đ -> d), no punctuation, single spaces: a matching key."""
    text = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = _PUNCT.sub(" ", text.lower())
    return _SPACES.sub(" ", text).strip()


def clean(value: object) -> str:
    """A cell or form value as one line of NFC text (None -> "")."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFC", str(value))
    return _SPACES.sub(" ", text).strip()


def normalize_phone(value: str) -> str | None:
    """Digits of a Vietnamese phone number (``+84`` becomes ``0``), or None if it is not one.

    A spreadsheet that stored the number as a number lost its leading zero: nine digits
    starting with 3, 5, 7, 8 or 9 get it back.
    """
    raw = value.strip()
    if not raw or not re.fullmatch(r"\+?[\d\s\u00a0.\-()]+", raw, re.ASCII):  # ASCII digits only
        return None
    digits = re.sub(r"\D", "", raw, flags=re.ASCII)
    if raw.startswith("+84") or (digits.startswith("84") and len(digits) == 11):
        digits = "0" + digits[2:]
    if len(digits) == 9 and digits[0] in "35789":
        digits = "0" + digits        # a mobile number stored as a number
    elif len(digits) == 10 and digits[0] == "2":
        digits = "0" + digits        # a landline (02x) stored as a number
    return digits if 9 <= len(digits) <= 11 else None


def mask_phone(digits: str) -> str:
    return digits[:2] + "•" * max(0, len(digits) - 5) + digits[-3:] if len(digits) > 5 else "•••"


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return (local[:1] + "•••@" + domain) if domain else "•••"


def neutralise(value: object) -> object:
    """For spreadsheet exports: text starting like a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they were written in UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_date(moment: datetime) -> date:
    return as_utc(moment).astimezone(LOCAL_TZ).date()


def local_time(moment: datetime | None) -> str:
    """``15/06/2021 14:05`` in Ho Chi Minh City time."""
    if moment is None:
        return ""
    return as_utc(moment).astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")


def is_late(moment: datetime, deadline: date | None) -> bool:
    """After the deadline day has ended in Ho Chi Minh City."""
    return deadline is not None and local_date(moment) > deadline


def now_utc() -> datetime:
    return datetime.now(UTC)
