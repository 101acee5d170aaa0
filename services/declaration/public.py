"""The public pages: a venue's declaration form (``/v/{code}``), its result, typing a code.

No sign-in, no large script: the form works with JavaScript off (adding a person or
narrowing the address pickers is a round trip to the server); a small static script
remembers the visitor on the device, adds group members and fills the pickers in place.
"""
from __future__ import annotations

from functools import partial
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from libs.common.events.provisioning import normalise_venue_code
from libs.common.ui import N_

from .batcher import Overloaded, StoreUnavailable
from .declare import DeclarationRefused, VenueRateLimited, accept, answer_for_submission, find_venue
from .directory import VenueInfo
from .messages import translate
from .forms import apply_action, declaration_input, form_errors, new_form_state, read_people
from .pages import BUSY, SENT_WITH_OTHER_DETAILS, render_form, render_result, render_venue_problem
from .schemas import DeclarationIn
from .web import RESULT_COOKIE, RESULT_SECONDS, BadBody, check_result_token, read_form, result_token

router = APIRouter(include_in_schema=False)

SENT_BEFORE = N_("This declaration had already been sent: here is its result.")


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "vi")


@router.get("/v")
async def enter_code(request: Request, code: str = ""):
    """A visitor who cannot scan types the code printed under the QR code."""
    typed = normalise_venue_code(code)[:20]
    if typed:
        return RedirectResponse(f"/v/{typed}", status_code=303)
    return request.app.state.templates.render(request, "declaration/enter_code.html", {"code": code})


async def _venue(request: Request, code: str) -> VenueInfo | Response:
    ports = request.app.state.runtime.extras["declaration"]
    try:
        return await find_venue(ports.directory, normalise_venue_code(code)[:20] or "-")
    except DeclarationRefused as exc:
        return render_venue_problem(request, exc)


@router.get("/v/{code}")
async def declaration_form(request: Request, code: str):
    venue = await _venue(request, code)
    if isinstance(venue, Response):
        return venue
    return render_form(request, venue, new_form_state(), {}, mode="public", action=f"/v/{venue.code}")


@router.post("/v/{code}")
async def declare(request: Request, code: str):
    venue = await _venue(request, code)
    if isinstance(venue, Response):
        return venue
    runtime = request.app.state.runtime
    ports = runtime.extras["declaration"]
    action_url = f"/v/{venue.code}"
    try:
        form = await read_form(request, runtime.settings.max_body_bytes)
    except BadBody as exc:
        return render_form(request, venue, new_form_state(), {"form": exc.message}, mode="public",
                           action=action_url, status=exc.status)
    people = read_people(form, ports.max_group)
    state = {"people": people, "key": form.get("key")[:64], "consent": form.get("consent") == "1", "fresh": False}
    action = form.get("action", "submit")
    if action != "submit":
        state["people"] = apply_action(action, people, ports.max_group)
        return render_form(request, venue, state, {}, mode="public", action=action_url)
    try:
        data = DeclarationIn.model_validate(declaration_input(venue.code, people, form))
    except ValidationError as exc:
        return render_form(request, venue, state, form_errors(exc, _lang(request), people), mode="public",
                           action=action_url, status=422)
    try:
        answer = await accept(ports, data, session_factory=partial(runtime.database.transaction, readonly=True))
    except DeclarationRefused as exc:
        if exc.code == "key_reused":  # e.g. Back, details changed, Send: a new declaration
            state["key"] = new_form_state()["key"]
            return render_form(request, venue, state, {"form": SENT_WITH_OTHER_DETAILS}, mode="public",
                               action=action_url, status=exc.status)
        if isinstance(exc, VenueRateLimited):  # the visitor's input stays in the form
            page = render_form(request, venue, state, {"form": translate(exc.message, _lang(request), **exc.params)},
                               mode="public", action=action_url, status=429)
            page.headers["retry-after"] = exc.retry_after
            return page
        if exc.code == "too_many":
            return render_form(request, venue, state, {"form": translate(exc.message, _lang(request), **exc.params)},
                               mode="public", action=action_url, status=422)
        return render_venue_problem(request, exc)
    except (Overloaded, StoreUnavailable):
        return render_form(request, venue, state, {"form": BUSY}, mode="public", action=action_url, status=503)
    submission = answer["submission_id"]
    page = f"/v/{venue.code}/done/{submission}"
    response = RedirectResponse(page + ("?dup=1" if answer["duplicate"] else ""), status_code=303)
    response.set_cookie(RESULT_COOKIE, result_token(runtime.settings.secret_key, submission), max_age=RESULT_SECONDS,
                        path=page, httponly=True, samesite="lax",
                        secure=runtime.settings.environment == "production" or request.url.scheme == "https")
    return response


@router.get("/v/{code}/done/{submission_id}")
async def result(request: Request, code: str, submission_id: UUID, dup: str = ""):
    runtime = request.app.state.runtime
    if not check_result_token(runtime.settings.secret_key, submission_id, request.cookies.get(RESULT_COOKIE)):
        return request.app.state.templates.render_error(request, 404)
    ports = runtime.extras["declaration"]
    async with runtime.database.transaction(readonly=True) as session:
        answer = await answer_for_submission(session, ports.keys, submission_id)
    if answer is None:
        return request.app.state.templates.render_error(request, 404)
    messages = [("info", SENT_BEFORE)] if dup else []
    return await render_result(request, answer, messages=messages, back_url=f"/v/{answer['venue_code']}")
