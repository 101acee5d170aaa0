"""The HTML declaration form: its fields, reading it back, and its errors next to each field.

The form names a person's fields ``p<index>.<field>`` (``p0.full_name``); the hidden
``count`` says how many people it holds. Used by the public page and the gate console.
"""
from __future__ import annotations

import secrets

from pydantic import ValidationError

from .messages import describe, translate
from .places import Places
from .web import Form

TEXT_FIELDS = ("full_name", "id_type", "id_number", "birth", "gender", "nationality", "phone", "province_code",
               "district_code", "commune_code", "street", "symptom_other", "vaccine_doses")
ADDRESS = ("province_code", "district_code", "commune_code", "street")
DEFAULT_PROVINCE = "79"
PHONE_MISSING = "Enter a phone number where the health center can reach you."


def blank_person(index: int, first: dict | None = None) -> dict:
    person = {name: "" for name in TEXT_FIELDS}
    person.update(index=index, id_type="cccd", nationality="Việt Nam", province_code=DEFAULT_PROVINCE,
                  symptoms=[], exposures=[], same_address=index > 0)
    if first is not None:
        person.update({name: first.get(name, "") for name in ADDRESS})
    return person


def new_form_state(prefill: dict | None = None) -> dict:
    """A fresh form: one person, a new idempotency key."""
    person = blank_person(0)
    if prefill:
        person.update({k: v for k, v in prefill.items() if v})
    return {"people": [person], "key": secrets.token_urlsafe(18), "consent": False, "fresh": not prefill}


def read_people(form: Form, max_group: int) -> list[dict]:
    """Every person of the form, as typed (strings), for the next rendering."""
    try:
        count = int(form.get("count", "1"))
    except ValueError:
        count = 1
    count = max(1, min(count, max_group + 1))
    people = []
    for index in range(count):
        prefix = f"p{index}."
        if index > 0 and not any(f"{prefix}{name}" in form for name in TEXT_FIELDS):
            continue
        # Only ASCII spaces stripped here: str.strip() would drop U+0085 and U+001C-U+001F
        # that the text policy (libs/common/text.py) must see to refuse.
        person = {name: form.get(prefix + name).strip(" \t\r\n") for name in TEXT_FIELDS}
        person.update(index=index, symptoms=form.getlist(prefix + "symptoms"),
                      exposures=form.getlist(prefix + "exposures"),
                      same_address=index > 0 and form.get(prefix + "same_address") == "1")
        people.append(person)
    for position, person in enumerate(people):
        person["index"] = position  # renumbered after a removal
    return people


def apply_action(action: str, people: list[dict], max_group: int) -> list[dict]:
    """``add`` a person, ``remove:<n>``, or ``refresh`` (new pickers after a province or district)."""
    if action == "add" and len(people) < max_group:
        people.append(blank_person(len(people), people[0]))
    elif action.startswith("remove:"):
        try:
            index = int(action.split(":", 1)[1])
        except ValueError:
            index = -1
        if 0 < index < len(people):
            del people[index]
            for position, person in enumerate(people):
                person["index"] = position
    return people


def declaration_input(venue_code: str, people: list[dict], form: Form) -> dict:
    """What DeclarationIn validates, from the form (a group member may share person 1's address)."""
    first = people[0] if people else {}
    entries = []
    for person in people:
        values = {name: person.get(name) or None for name in TEXT_FIELDS if name not in ("symptom_other",)}
        if person.get("same_address"):
            values.update({name: first.get(name) or None for name in ADDRESS})
        values["symptom_other"] = person.get("symptom_other") or None
        values["nationality"] = person.get("nationality") or "Việt Nam"
        values["symptoms"] = person.get("symptoms", [])
        values["exposures"] = person.get("exposures", [])
        doses = person.get("vaccine_doses")
        values["vaccine_doses"] = int(doses) if doses and doses.isdigit() else (None if not doses else doses)
        entries.append({k: v for k, v in values.items() if v is not None})
    return {"venue_code": venue_code, "people": entries, "consent": form.get("consent") == "1",
            "idempotency_key": form.get("key") or None}


def form_errors(exc: ValidationError, lang: str, people: list[dict]) -> dict[str, str]:
    """Field key of the form -> message: ``people.0.phone`` -> ``p0.phone``.

    The group's phone is checked once every person is valid; a visitor who left it empty
    learns it with the other mistakes, not after correcting them.
    """
    errors = {}
    for key, message in describe(exc, lang).items():
        parts = key.split(".")
        if parts[0] == "people" and len(parts) >= 3 and parts[1].isdigit():
            errors[f"p{parts[1]}.{parts[2]}"] = message
        elif parts[0] in ("consent",):
            errors["consent"] = message
        elif parts[0] == "people":
            errors["p0.full_name"] = message
        else:
            errors.setdefault("form", message)
    if people and not people[0].get("phone"):
        errors.setdefault("p0.phone", translate(PHONE_MISSING, lang))
    return errors


def picker_options(places: Places, person: dict) -> dict:
    """The options of a person's three address pickers, from what is chosen so far."""
    return {
        "provinces": places.province_options(),
        "districts": places.district_options(person.get("province_code")),
        "communes": places.commune_options(person.get("district_code")),
    }
