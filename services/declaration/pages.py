"""Rendering the declaration form, its result and the venue problems (public page and gate)."""
from __future__ import annotations

from datetime import datetime

import segno
from fastapi import Request
from fastapi.responses import Response

from libs.common.ui import N_

from .declare import DeclarationRefused
from .directory import VenueInfo
from .forms import blank_person, picker_options
from .messages import translate
from .places import load_places
from .screening import EXPOSURES, SYMPTOMS
from .web import local_text

BUSY = N_("The system is busy and your declaration was not saved. Please press Send again in a few seconds.")
# The form's idempotency key was sent before with other details (Back, a change, Send):
# nothing of the first is shown; the form comes back with a new key.
SENT_WITH_OTHER_DETAILS = N_("This form had already been sent with other details, so nothing was saved. "
                             "Check the details and press Send again to make a new declaration.")
ID_TYPES = (("cccd", N_("Citizen ID card (CCCD, 12 digits)")), ("cmnd", N_("Old ID card (CMND, 9 digits)")),
            ("passport", N_("Passport")))
STATUS = {
    "green": (N_("GREEN"), N_("You may enter")),
    "yellow": (N_("YELLOW"), N_("Show this code to the staff at the gate")),
    "red": (N_("RED"), N_("Do not enter: tell the staff at the gate")),
}


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "vi")


def render_form(request: Request, venue: VenueInfo, state: dict, errors: dict, *, mode: str, action: str,
                status: int = 200, extra: dict | None = None) -> Response:
    places = load_places()
    lang = _lang(request)
    errors = {key: translate(message, lang) for key, message in errors.items()}
    people = [dict(person, options=picker_options(places, person)) for person in state["people"]]
    ports = request.app.state.runtime.extras["declaration"]
    context = {
        "venue": venue, "people": people, "key": state["key"], "consent": state.get("consent", False),
        "fresh": state.get("fresh", False), "errors": errors, "mode": mode,
        "field_errors": {key: message for key, message in errors.items() if key != "form"}, "action": action,
        "max_group": ports.max_group, "symptoms": [(code, translate(label, lang)) for code, label in SYMPTOMS],
        "exposures": [(code, translate(label, lang)) for code, label in EXPOSURES],
        "id_options": [(code, translate(label, lang)) for code, label in ID_TYPES],
        "prefilled_from": state.get("prefilled_from"),
        "page_title": translate(N_("Health declaration"), lang),
    }
    template_person = blank_person(99, state["people"][0])
    context["template_person"] = dict(template_person, options=picker_options(places, template_person))
    context.update(extra or {})
    template = "declaration/declare.html" if mode == "public" else "declaration/gate_declare.html"
    return request.app.state.templates.render(request, template, context, status_code=status)


def qr_data_uri(text: str) -> str:
    """The QR code as an SVG data URI (CSP allows data: images; no inline script or style)."""
    return segno.make(text, error="m").svg_data_uri(scale=4, border=4, dark="#000", light="#fff")


async def render_result(request: Request, answer: dict, *, messages: list | None = None, back_url: str,
                        template: str = "declaration/result.html", extra: dict | None = None) -> Response:
    lang = _lang(request)
    book = await request.app.state.runtime.extras["declaration"].directory.rules()
    passes = []
    for item in answer["declarations"]:
        colour, action = STATUS[item["result"]]
        valid_until = datetime.fromisoformat(item["valid_until"])
        passes.append({
            **item, "qr_image": qr_data_uri(item["qr"]), "valid_until_text": local_text(valid_until),
            "valid_until_epoch": int(valid_until.timestamp()), "colour": translate(colour, lang),
            "action": translate(action, lang), "reasons_text": [book.label(r, lang) for r in item["reasons"]],
            "advice": book.advice(item["result"], lang) if item["result"] in ("green", "yellow", "red") else "",
        })
    context = {"answer": answer, "passes": passes, "back_url": back_url,
               "messages": [(level, translate(text, lang)) for level, text in (messages or [])],
               "page_title": translate(N_("Your health declaration"), lang)}
    context.update(extra or {})
    return request.app.state.templates.render(request, template, context)


def render_venue_problem(request: Request, exc: DeclarationRefused) -> Response:
    lang = _lang(request)
    return request.app.state.templates.render(request, "declaration/venue_problem.html", {
        "problem": exc.code, "message": translate(exc.message, lang, **exc.params),
        "page_title": translate(N_("Health declaration"), lang),
    }, status_code=exc.status)
