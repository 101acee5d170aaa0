"""Validation errors as clear sentences in the visitor's language, attached to fields.

The checks raise English msgids (schemas.py); the Vietnamese catalogue of this service
translates them. Pydantic's own error types get a sentence here too, so no technical
message ever reaches a visitor.
"""
from __future__ import annotations

from pydantic import ValidationError

from libs.common.ui import N_, gettext

from .texts import VI

GENERIC = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "string_too_long": N_("This text is too long: at most %(max_length)s characters."),
    "string_type": N_("This field is required."),
    "literal_error": N_("Choose one of the options."),
    "enum": N_("Choose one of the options."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "less_than_equal": N_("The number is too large."),
    "greater_than_equal": N_("The number is too small."),
    "bool_parsing": N_("Choose yes or no."),
    "bool_type": N_("Choose yes or no."),
    "list_type": N_("Choose among the listed answers."),
    "extra_forbidden": N_("This field is not part of the form."),
    "json_invalid": N_("The request is not valid JSON."),
    "model_type": N_("The request is not valid JSON."),
    "model_attributes_type": N_("The request is not valid JSON."),
}
BY_FIELD = {
    "venue_code": N_("The venue code is not valid: scan the QR code at the gate again."),
    "idempotency_key": N_("The form has expired: open it again and send it once more."),
    "province_code": N_("Choose the province or city."),
    "district_code": N_("Choose the district."),
    "commune_code": N_("Choose the commune or ward."),
    "people": N_("Add at least one person."),
}
TOO_MANY = N_("At most %(max_length)s people can declare together: send the others in a second form.")


def field_key(loc: tuple) -> str:
    """``("people", 0, "phone")`` -> ``people.0.phone`` (the form maps it to its input's name)."""
    return ".".join(str(part) for part in loc)


def translate(message: str, lang: str, **params: object) -> str:
    """``message`` (an English msgid) in ``lang``: Python's own texts, else the catalogues."""
    text = (VI.get(message) if lang == "vi" else None) or gettext(message, lang)
    if params:
        try:
            return text % params
        except (KeyError, TypeError, ValueError):
            return text
    return text


def _location(item: dict) -> tuple:
    loc = tuple(item.get("loc", ()))
    ctx = item.get("ctx") or {}
    if isinstance(ctx.get("field"), str):
        loc = (*loc, *ctx["field"].split("."))
    if len(loc) >= 2 and isinstance(loc[-1], int) and loc[-2] in ("symptoms", "exposures"):
        loc = loc[:-1]  # one of the ticked answers: report the question
    return loc


def _message(item: dict, loc: tuple, lang: str) -> str:
    ctx = {k: v for k, v in (item.get("ctx") or {}).items() if k != "field"}
    if "text_vi" in ctx:  # the text policy's refusal (libs/common/text.py): both languages given
        return str(ctx["text_vi"]) if lang == "vi" else str(item.get("msg", ""))
    kind = item.get("type", "")
    last = str(loc[-1]) if loc else ""
    if kind == "too_long" and last == "people":
        return translate(TOO_MANY, lang, max_length=ctx.get("max_length", ""))
    if kind in ("missing", "string_too_short", "string_pattern_mismatch", "string_type") and last in BY_FIELD:
        return translate(BY_FIELD[last], lang)
    if kind in GENERIC:
        return translate(GENERIC[kind], lang, **ctx)
    if item.get("msg") and kind not in ("value_error", "assertion_error"):
        return translate(str(item["msg"]), lang)  # our own checks: the message is an English msgid
    return translate(N_("This value is not valid."), lang)


def describe(exc: ValidationError, lang: str) -> dict[str, str]:
    """Field key -> message (the first one of each field)."""
    found: dict[str, str] = {}
    for item in exc.errors(include_url=False, include_input=False):
        loc = _location(item)
        found.setdefault(field_key(loc), _message(item, loc, lang))
    return found


def api_errors(exc: ValidationError) -> list[dict]:
    """The JSON API's error list: where, a code, the Vietnamese and the English message."""
    seen: dict[str, dict] = {}
    for item in exc.errors(include_url=False, include_input=False):
        loc = _location(item)
        key = field_key(loc)
        if key not in seen:
            seen[key] = {"loc": list(loc), "type": item.get("type", "invalid"), "msg": _message(item, loc, "vi"),
                         "msg_en": _message(item, loc, "en")}
    return list(seen.values())
