"""Reading the gate's "report a suspected case" form: checks and clear messages."""
from __future__ import annotations

import re
from uuid import UUID

from pydantic_core import PydanticCustomError

from libs.common import text as typed
from libs.common.ui import N_

from .passes import PassKeys
from .schemas import ID_NUMBER, PHONE, kind_of, normalize_phone
from .screening import SYMPTOM_CODES
from .web import Form


def read_case(form: Form, keys: PassKeys) -> tuple[dict, dict, dict]:
    """(what was typed, errors by field, the arguments of service.raise_case)."""
    values = {name: form.get(name) for name in ("full_name", "phone", "id_number", "note", "declaration")}
    values["symptoms"] = [s for s in form.getlist("symptoms") if s in SYMPTOM_CODES]
    errors: dict[str, str | typed.TextRefused] = {}
    # The text policy (libs/common/text.py) first, on what was typed: a refused value is
    # shown back empty (it may hold invisible characters), with the refusal.
    for field, check, label in (("full_name", typed.name, typed.FULL_NAME), ("note", typed.free_text, ("Mô tả những gì quan sát được", "What you saw")),
                                ("phone", typed.short_text, PHONE), ("id_number", typed.short_text, ID_NUMBER),
                                ("declaration", typed.short_text, ("Mã QR cá nhân", "Personal QR code"))):
        try:
            values[field] = check(values[field], label)
        except typed.TextRefused as exc:
            errors[field], values[field] = exc, ""
    values = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}
    name = values["full_name"]
    if "full_name" in errors:
        pass
    elif len(name) < 2:
        errors["full_name"] = N_("Write the full name as on the ID document.")
    elif len(name) > 100:
        errors["full_name"] = N_("A name has letters and spaces only, no digits or symbols.")
    phone = None
    if values["phone"] and "phone" not in errors:
        try:
            phone = normalize_phone(values["phone"])
        except PydanticCustomError as exc:
            errors["phone"] = exc.message_template
    number = re.sub(r"[\s.-]", "", values["id_number"]).upper() or None
    if number is not None and not number.isascii():
        errors["id_number"] = N_("A passport number has 6 to 9 letters or digits, such as C1234567.")
    elif number is not None:
        kind = kind_of(number)
        if number.isdigit() and len(number) not in (9, 12):
            errors["id_number"] = N_("An ID card number has 12 digits (CCCD) or 9 digits (CMND).")
        elif kind == "passport" and not re.match(r"^[A-Z0-9]{6,9}$", number):
            errors["id_number"] = N_("A passport number has 6 to 9 letters or digits, such as C1234567.")
    if len(values["note"]) > 1000 and "note" not in errors:
        errors["note"] = N_("The note is too long: at most 1000 characters.")
    declaration_id = None
    link = values["declaration"]
    if link:
        if link.upper().startswith("KB1."):
            found = keys.verify(link)
            declaration_id = found.declaration_id
            if declaration_id is None:
                errors["declaration"] = N_("This QR code is not a genuine health declaration QR code.")
        else:
            try:
                declaration_id = UUID(link)
            except ValueError:
                errors["declaration"] = N_("Scan the visitor's personal QR code, or leave this field empty.")
    if not values["symptoms"] and not values["note"] and "note" not in errors:
        errors["note"] = N_("Tick the signs you saw, or describe them.")
    parsed = {"full_name": name, "phone": phone, "id_number": number, "symptoms": values["symptoms"],
              "note": values["note"] or None, "declaration_id": declaration_id}
    return values, errors, parsed
