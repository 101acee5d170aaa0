"""API errors as RFC 9457 problem details (``application/problem+json``), in the caller's language.

Every JSON error of every service has the same shape::

    {"type": "/problems/validation", "title": "Thông tin chưa hợp lệ", "status": 422,
     "detail": "Vui lòng sửa các mục sau:",
     "errors": [{"field": "people.0.full_name", "message": "...", "type": "missing"}]}

- ``type`` is a relative URI reference ``/problems/<kind>``: a stable slug per kind of error
  (:data:`KINDS`; by default the one of the status code), for programs to branch on;
- ``title`` names the kind, ``detail`` says what happened, both in the caller's language;
- ``errors`` (for a refused field) lists each field (dotted path, as the request spelled
  it) with its message in the caller's language.

The language of an API answer is the ``?lang=`` parameter or the console's choice (its
cookie) when present, else ``Accept-Language`` (Vietnamese by default, English supported).
Older code raises ``HTTPException(status, "<Vietnamese> / <English>")``: such a message is
split and only the caller's half is sent (``one_language``).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from .ui.i18n import N_, get_translations, gettext, negotiate_locale
from .ui.templates import VIETNAMESE, one_language

MEDIA_TYPE = "application/problem+json"
PREFIX = "/problems/"

# kind -> title (an English msgid; the common catalogue translates it).
KINDS: dict[str, str] = {
    "bad-request": N_("Bad request"),
    "unauthenticated": N_("Not signed in"),
    "forbidden": N_("Access denied"),
    "not-found": N_("Not found"),
    "method-not-allowed": N_("Method not allowed"),
    "conflict": N_("Conflict"),
    "gone": N_("No longer available"),
    "too-large": N_("Request too large"),
    "unsupported-media-type": N_("Unsupported content type"),
    "validation": N_("Invalid input"),
    "rate-limited": N_("Too many requests"),
    "internal": N_("Internal server error"),
    "unavailable": N_("Service temporarily unavailable"),
    "error": N_("Error"),
}
BY_STATUS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found",
             405: "method-not-allowed", 409: "conflict", 410: "gone", 413: "too-large",
             415: "unsupported-media-type", 422: "validation", 429: "rate-limited", 500: "internal",
             503: "unavailable"}
PLEASE_CORRECT = N_("Please correct the following:")
_PHRASES = frozenset(status.phrase for status in HTTPStatus)


def kind_for(status: int) -> str:
    return BY_STATUS.get(status, "error")


def api_locale(conn: HTTPConnection) -> str:
    """The language of an API answer: ``?lang=``, the console's cookie, ``Accept-Language``, else vi."""
    return negotiate_locale(conn, api=True)


def localise(message: Any, lang: str, locale_dirs: tuple = ()) -> str:  # noqa: ANN401
    """A message object (``.text(lang)``), a (vi, en) pair, a joined "vi / en" string or a msgid."""
    if message is None:
        return ""
    if hasattr(message, "text") and callable(message.text):
        return message.text(lang)
    if isinstance(message, tuple) and len(message) == 2:
        return message[1] if lang == "en" else message[0]
    text = str(message)
    if " / " in text:
        return one_language(text, lang)
    return get_translations(lang, tuple(locale_dirs)).gettext(text) if locale_dirs else gettext(text, lang)


def field_of(loc: Iterable[Any]) -> str:
    """``("body", "people", 0, "phone")`` -> ``people.0.phone``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts)


# Pydantic's own error types, as sentences of the common catalogue (its English is technical).
GENERIC: dict[str, str] = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "string_too_long": N_("This text is too long."),
    "string_type": N_("Enter a text."),
    "string_pattern_mismatch": N_("This value is not in the expected form."),
    "literal_error": N_("Choose one of the options."),
    "enum": N_("Choose one of the options."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "float_parsing": N_("Enter a number."),
    "less_than_equal": N_("The number is too large."),
    "greater_than_equal": N_("The number is too small."),
    "less_than": N_("The number is too large."),
    "greater_than": N_("The number is too small."),
    "bool_parsing": N_("Choose yes or no."),
    "bool_type": N_("Choose yes or no."),
    "list_type": N_("Enter a list."),
    "dict_type": N_("Enter an object."),
    "model_type": N_("Enter an object."),
    "model_attributes_type": N_("Enter an object."),
    "too_short": N_("Too few items."),
    "too_long": N_("Too many items."),
    "uuid_parsing": N_("This is not a valid identifier."),
    "uuid_type": N_("This is not a valid identifier."),
    "date_from_datetime_parsing": N_("Enter a date (year-month-day)."),
    "date_parsing": N_("Enter a date (year-month-day)."),
    "datetime_parsing": N_("Enter a date and time."),
    "datetime_from_date_parsing": N_("Enter a date and time."),
    "extra_forbidden": N_("This field is not expected here."),
    "json_invalid": N_("The request is not valid JSON."),
    "value_error": N_("This value is not valid."),
}


def validation_errors(items: Iterable[Mapping[str, Any]], lang: str) -> list[dict[str, Any]]:
    """Field errors of the older shapes (pydantic's, ``msg``/``msg_en``, ``ctx.msg_vi``/``msg_en``, a
    joined "vi / en" ``msg``) as problem ``errors``: ``field``, ``message`` in ``lang``, ``type``."""
    out = []
    for item in items:
        ctx = item.get("ctx") or {}
        kind = str(item.get("type", ""))
        if "message" in item:  # already in the caller's language
            message = item["message"]
        elif lang == "en" and item.get("msg_en"):
            message = item["msg_en"]
        elif "msg_vi" in ctx or "msg_en" in ctx:
            message = ctx.get("msg_en" if lang == "en" else "msg_vi") or item.get("msg", "")
        elif kind in GENERIC and "msg_en" not in item:
            message = gettext(GENERIC[kind], lang)
        else:
            message = one_language(str(item.get("msg", "")), lang)
            if lang != "en" and "loc" in item and not VIETNAMESE.search(message):
                # pydantic's own English for a type the table above lacks: the generic sentence
                # in the caller's language rather than English on a Vietnamese answer.
                message = gettext(GENERIC["value_error"], lang)
        out.append({"field": item["field"] if "field" in item else field_of(item.get("loc", ())),
                    "message": str(message), "type": kind})
    return out


def problem_body(status: int, lang: str, detail: Any = None, *, kind: str | None = None,  # noqa: ANN401
                 errors: list[dict[str, Any]] | None = None, locale_dirs: tuple = ()) -> dict[str, Any]:
    kind = kind or kind_for(status)
    title = gettext(KINDS.get(kind, KINDS[kind_for(status)]), lang)
    if isinstance(detail, str) and detail in _PHRASES:  # Starlette's default ("Not Found"): the title says it
        detail = None
    body: dict[str, Any] = {"type": PREFIX + kind, "title": title, "status": status,
                            "detail": localise(detail, lang, locale_dirs) if detail else title}
    if errors is not None:
        body["errors"] = errors
    return body


def problem_bytes(status: int, lang: str, detail: Any = None, **kwargs: Any) -> bytes:  # noqa: ANN401
    return json.dumps(problem_body(status, lang, detail, **kwargs), ensure_ascii=False,
                      separators=(",", ":")).encode()


def problem_response(conn: HTTPConnection, status: int, detail: Any = None, *,  # noqa: ANN401
                     kind: str | None = None, errors: list[dict[str, Any]] | None = None,
                     headers: Mapping[str, str] | None = None, lang: str | None = None) -> JSONResponse:
    """A problem+json answer to ``conn`` in its API language (see :func:`api_locale`).

    ``detail`` and an error's ``msgid`` (instead of its ``message``) are translated with the
    service's catalogues over the common one."""
    lang = lang or api_locale(conn)
    app = conn.scope.get("app")
    templates = getattr(getattr(app, "state", None), "templates", None)
    locale_dirs = tuple(getattr(templates, "locale_dirs", ()) or ())
    if errors:
        translations = get_translations(lang, locale_dirs)
        errors = [{"field": e["field"], "message": translations.gettext(e["msgid"]), "type": e.get("type", "")}
                  if "msgid" in e else e for e in errors]
    body = problem_body(status, lang, detail, kind=kind, errors=errors, locale_dirs=locale_dirs)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=MEDIA_TYPE)


# The OpenAPI description of a problem (components.schemas.Problem).
SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": ("An error, RFC 9457 problem details (application/problem+json), in the language of "
                    "Accept-Language (vi by default, en). `type` is a stable relative URI, "
                    "/problems/<kind>: " + ", ".join(PREFIX + k for k in KINDS) + "."),
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference", "example": "/problems/validation"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": {"type": "string", "example": "people.0.full_name"},
                           "message": {"type": "string"}, "type": {"type": "string"}}}},
    },
}
