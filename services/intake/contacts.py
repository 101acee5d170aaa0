"""The focal points and their contacts, for the districts' public pages: data, not code.

Read from ``contacts.json`` beside this module or from KHAIBAO_INTAKE_CONTACTS_FILE;
an office missing from the file still appears, named from the admin-unit tree.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from libs.common.adminunits import AdminUnit

log = logging.getLogger(__name__)
DEFAULT_FILE = Path(__file__).with_name("contacts.json")


@dataclass(frozen=True)
class Person:
    name: str
    title: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class Office:
    path: str
    name: str
    address: str = ""
    phone: str = ""
    email: str = ""
    hours: str = ""
    people: tuple[Person, ...] = ()


@dataclass(frozen=True)
class DistrictContacts:
    district: Office
    communes: tuple[Office, ...] = field(default_factory=tuple)
    health_center: Office | None = None


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.exception("cannot read the contacts file %s; using names from the admin-unit tree", path)
        return {}
    return data.get("districts", {}) if isinstance(data, dict) else {}


def _entries(file: Path | None) -> dict:
    path = Path(file) if file else DEFAULT_FILE
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    return _load(str(path), mtime)


def _office(path: str, default_name: str, raw: dict | None, email: str) -> Office:
    raw = raw or {}
    people = tuple(Person(**{k: str(v) for k, v in p.items() if k in ("name", "title", "phone", "email")})
                   for p in raw.get("people", ()) if isinstance(p, dict) and p.get("name"))
    return Office(path=path, name=str(raw.get("office") or default_name), address=str(raw.get("address", "")),
                  phone=str(raw.get("phone", "")), email=str(raw.get("email") or email), hours=str(raw.get("hours", "")),
                  people=people)


def district_contacts(district: AdminUnit, *, list_address: str, file: Path | None = None) -> DistrictContacts:
    entry = _entries(file).get(district.path) or {}
    communes_raw = entry.get("communes", {}) if isinstance(entry.get("communes"), dict) else {}
    district_office = _office(district.path, f"Phòng Văn hóa và Thông tin {district.name}", entry, list_address)
    communes = tuple(_office(c.path, f"UBND {c.name[0].lower()}{c.name[1:]}", communes_raw.get(c.path), "")
                     for c in district.children)
    health = entry.get("health_center")
    return DistrictContacts(district=district_office, communes=communes,
                            health_center=_office(district.path, f"Trung tâm Y tế {district.name}", health, "")
                            if isinstance(health, dict) else None)
