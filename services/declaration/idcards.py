"""Reading what a gate scanner types: a chip ID card (CCCD) QR or a national personal QR.

CCCD (2021 chip card), seven fields separated by ``|``::

    CCCD number (12 digits)|old CMND (9 digits, may be empty)|full name|date of birth ddmmyyyy|
    gender (Nam / Nữ)|permanent address|issue date ddmmyyyy

A six-field variant without the CMND, and dates written dd/mm/yyyy, are seen in the wild.

National personal QR (Decision 1405/QĐ-BTTTT, PC-Covid and VNeID)::

    ID number|full name|date of birth yyyy-mm-dd|0 self / 1 declared on behalf|QID|EXT

Both give a prefill for the declaration form; nothing is stored from the scan itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_DIGITS12 = re.compile(r"^\d{12}$")
_DIGITS9 = re.compile(r"^\d{9}$")


@dataclass(frozen=True)
class Prefill:
    source: str                  # cccd | qr1405
    id_type: str | None
    id_number: str | None
    full_name: str
    birth: str | None            # dd/mm/yyyy, as the form shows it
    gender: str | None           # male | female
    address: str | None          # free text (the permanent address of a CCCD)


def _ddmmyyyy(text: str) -> date | None:
    digits = text.strip().replace("/", "").replace("-", "").replace(".", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
    except ValueError:
        return None


def _gender(text: str) -> str | None:
    folded = text.strip().lower()
    if folded in ("nam", "male", "m"):
        return "male"
    if folded in ("nữ", "nu", "nữ", "female", "f"):
        return "female"
    return None


def _id_type(number: str) -> str | None:
    if _DIGITS12.match(number):
        return "cccd"
    if _DIGITS9.match(number):
        return "cmnd"
    return "passport" if number else None


def parse_cccd(text: str) -> Prefill | None:
    fields = [f.strip() for f in text.strip().split("|")]
    if len(fields) == 7:
        number, _old, name, birth, gender, address, _issued = fields
    elif len(fields) == 6:
        number, name, birth, gender, address, _issued = fields
    else:
        return None
    born = _ddmmyyyy(birth)
    if not _DIGITS12.match(number) or not name or born is None or _ddmmyyyy(_issued) is None:
        return None
    return Prefill("cccd", "cccd", number, " ".join(name.split()), f"{born:%d/%m/%Y}", _gender(gender),
                   address or None)


def parse_qr1405(text: str) -> Prefill | None:
    fields = [f.strip() for f in text.strip().split("|")]
    if len(fields) != 6 or fields[3] not in ("0", "1"):
        return None
    number, name, birth = fields[0], " ".join(fields[1].split()), fields[2]
    try:
        born = date.fromisoformat(birth)
    except ValueError:
        return None
    if not name or (number and not re.match(r"^[A-Za-z0-9]{6,12}$", number)):
        return None
    return Prefill("qr1405", _id_type(number), number or None, name, f"{born:%d/%m/%Y}", None, None)


def parse_identity(text: str) -> Prefill | None:
    """Whichever of the two formats ``text`` is, or None."""
    text = text.strip()
    if len(text) > 1000 or "|" not in text:
        return None
    return parse_cccd(text) or parse_qr1405(text)
