"""Reading what a gate scanner types: a chip ID card (CCCD) QR or a national personal QR.

CCCD (2021 chip card), seven fields separated by ``|``::

    CCCD number (12 digits)|old CMND (9 digits, may be empty)|full name|date of birth ddmmyyyy|
    gender (Nam / Nữ)|permanent address|issue date ddmmyyyy

A six-field variant without the CMND, and dates written dd/mm/yyyy, are seen in the wild.

National personal QR (Decision 1405/QĐ-BTTTT, PC-Covid and VNeID)::

    ID number|full name|date of birth yyyy-mm-dd|0 self / 1 declared on behalf|QID|EXT

Both give a prefill for the declaration form; nothing is stored from the scan itself.
A card that is read only in part (a digit lost, an impossible date, a field missing) gives
``read_identity``'s reasons, each naming its field, and the fields that could be read:
the gate says what is wrong and offers the assisted form with those (never a failed one).
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
    full_name = _name(name)  # a name of digits: a field was lost and the old CMND took its place
    if not _DIGITS12.match(number) or not full_name or born is None or _ddmmyyyy(_issued) is None:
        return None
    return Prefill("cccd", "cccd", number, full_name, f"{born:%d/%m/%Y}", _gender(gender), address or None)


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


# -- reading a card in part: what is wrong, and what could be read -------------------------

ID_MISSING = "The ID number is missing."
ID_LENGTH = "The ID number has %(n)s digits: a CCCD number has exactly 12."
ID_NOT_DIGITS = "The ID number has characters other than digits."
NAME_MISSING = "The full name is missing."
BIRTH_MISSING = "The date of birth is missing."
BIRTH_IMPOSSIBLE = "The date of birth %(value)s does not exist."
BIRTH_FUTURE = "The date of birth %(value)s is in the future."
BIRTH_FORMAT = "The date of birth “%(value)s” is not a date."
ISSUED_IMPOSSIBLE = "The card's issue date %(value)s does not exist."
FIELDS_MISSING = "The ID card code has %(n)s fields instead of 7: a field is missing."
FIELDS_EXTRA = "The ID card code has %(n)s fields instead of 7."
UNCLEAR = "Part of the ID card code could not be read."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scanned card: an English msgid (texts.py has the Vietnamese),
    its parameters, and the form field it concerns (``None``: the code as a whole)."""

    field: str | None            # id_number | full_name | birth | None
    message: str
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reading:
    """What a scan gave: a complete prefill (no problems), a partial one with the reasons,
    or neither (not an identity code at all: ``recognised`` is False)."""

    recognised: bool
    prefill: Prefill | None
    problems: tuple[Problem, ...] = ()


def _date_problem(value: str, field: str, *, iso: bool = False) -> tuple[str | None, Problem | None]:
    """``value`` as dd/mm/yyyy, or the reason it is not one."""
    value = value.strip()
    if not value:
        return None, Problem(field, BIRTH_MISSING)
    if iso:
        digits = value.replace("-", "")
        parts = (digits[6:8], digits[4:6], digits[:4]) if len(digits) == 8 and digits.isdigit() else None
    else:
        digits = value.replace("/", "").replace("-", "").replace(".", "")
        parts = (digits[:2], digits[2:4], digits[4:]) if len(digits) == 8 and digits.isdigit() else None
    if parts is None:
        return None, Problem(field, BIRTH_FORMAT, (("value", value[:20]),))
    shown = "/".join(parts)
    try:
        born = date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        return None, Problem(field, BIRTH_IMPOSSIBLE if field == "birth" else ISSUED_IMPOSSIBLE,
                             (("value", shown),))
    if born > date.today():
        return None, Problem(field, BIRTH_FUTURE, (("value", shown),))
    return f"{born:%d/%m/%Y}", None


def _number_problem(number: str) -> Problem | None:
    if not number:
        return Problem("id_number", ID_MISSING)
    if not number.isdigit():
        return Problem("id_number", ID_NOT_DIGITS)
    if len(number) != 12:
        return Problem("id_number", ID_LENGTH, (("n", str(len(number))),))
    return None


def _name(text: str) -> str | None:
    name = " ".join(text.split())
    return name if name and any(c.isalpha() for c in name) and not any(c.isdigit() for c in name) else None


def _looks_like_date(text: str) -> bool:
    return bool(re.match(r"^\d\d[/.\-]?\d\d[/.\-]?\d{4}$", text.strip()))


def read_identity(text: str) -> Reading:
    """``parse_identity`` that also says what is wrong with a card read in part."""
    text = text.strip()
    complete = parse_identity(text)
    if complete is not None:
        return Reading(True, complete)
    fields = [f.strip() for f in text.split("|")] if len(text) <= 1000 else []
    # An identity code starts with the ID number (digits, a few lost or extra) and has a
    # handful of fields; anything else is not one (a web address, a venue code, junk).
    if not 4 <= len(fields) <= 9 or not re.match(r"^\d{6,15}$", fields[0]) and not (
            fields[0] == "" and len(fields) in (6, 7)):
        return Reading(False, None)
    if len(fields) == 6 and fields[3] in ("0", "1") and re.match(r"^\d{4}-", fields[2]):
        return _partial_qr1405(fields)
    return _partial_cccd(fields)


def _partial_cccd(fields: list[str]) -> Reading:
    problems: list[Problem] = []
    if len(fields) == 7:
        number, _old, name, birth, gender, address, issued = fields
    elif len(fields) == 6 and not re.match(r"^\d{9}$", fields[1]):
        number, name, birth, gender, address, issued = fields
    else:
        # A field lost (or one too many): only what sits where it must is taken, the number
        # first and the name, date of birth and gender recognised by their shape.
        problems.append(Problem(None, FIELDS_MISSING if len(fields) < 7 else FIELDS_EXTRA,
                                (("n", str(len(fields))),)))
        number = fields[0]
        rest = fields[1:]
        name = next((f for f in rest if _name(f) and not _gender(f) and "," not in f), "")
        birth = next((f for f in rest if _looks_like_date(f)), "")
        gender = next((f for f in rest if _gender(f)), "")
        address = issued = ""
    number_problem = _number_problem(number)
    if number_problem:
        problems.append(number_problem)
    full_name = _name(name)
    if full_name is None:
        problems.append(Problem("full_name", NAME_MISSING))
    born, birth_problem = _date_problem(birth, "birth")
    if birth_problem:
        problems.append(birth_problem)
    if issued:
        _, issued_problem = _date_problem(issued, "issued")
        if issued_problem and issued_problem.message == ISSUED_IMPOSSIBLE:
            problems.append(Problem(None, ISSUED_IMPOSSIBLE, issued_problem.params))
    prefill = Prefill("cccd", "cccd" if number_problem is None else None, None if number_problem else number,
                      full_name or "", born, _gender(gender), address or None)
    return Reading(True, prefill, tuple(problems) or (Problem(None, UNCLEAR),))


def _partial_qr1405(fields: list[str]) -> Reading:
    number, name, birth = fields[0], fields[1], fields[2]
    problems: list[Problem] = []
    if number and not re.match(r"^[A-Za-z0-9]{6,12}$", number):
        problems.append(_number_problem(number) or Problem("id_number", ID_NOT_DIGITS))
        number = ""
    full_name = _name(name)
    if full_name is None:
        problems.append(Problem("full_name", NAME_MISSING))
    born, birth_problem = _date_problem(birth, "birth", iso=True)
    if birth_problem:
        problems.append(birth_problem)
    prefill = Prefill("qr1405", _id_type(number), number or None, full_name or "", born, None, None)
    return Reading(True, prefill, tuple(problems) or (Problem(None, UNCLEAR),))
