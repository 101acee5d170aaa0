"""The gate console without network: an installable web app that keeps working for a shift.

* ``/gate/manifest.webmanifest`` and ``/gate/sw.js`` (scope ``/gate/``) make the console
  installable on the gate's phone or PC; no external service is involved.
* The service worker keeps a *shell* of each gate screen (``/gate/{venue}/shell``: the gate
  page without any personal data — no suspected cases, no signal), the blank assisted form,
  the static assets, the address pickers' data and the pass keys. Pages stay
  ``Cache-Control: no-store``: offline, the worker answers a gate navigation with its shell.
* Offline, personal QR codes are verified in the page (WebCrypto Ed25519, the keys embedded
  in the shell); entries and assisted declarations wait in IndexedDB, entries keyed by a
  nonce made on the device, declarations by their idempotency key (bound to the body by
  ``accept``), so sending them again when the network returns stores each exactly once.
* ``POST /api/gate/{venue}/declarations`` takes a queued declaration (the form's fields, as
  the page would have posted them) and answers the visitor's result; the device deletes
  the declaration when it has that answer. ``GET /api/gate/session`` gives the page the
  CSRF token of the present sign-in: a queue made before the session expired is sent after
  the staff member signs in again.
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from libs.common.auth import Principal, require
from libs.common.ui import N_

from ..batcher import Overloaded, StoreUnavailable
from ..declare import DeclarationRefused
from ..forms import declaration_input, form_errors, read_people
from .pages import _gate_page, _venue, declare_for_visitor, gate_user
from ..messages import translate
from ..pages import BUSY
from ..schemas import DeclarationIn
from ..service import GATE_ROLES, count_today, venue_for_gate
from ..web import BadBody, Form, read_body

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/gate", tags=["gate"])

STATIC = Path(__file__).parents[1] / "static"  # the service's static folder
APP_NAME = N_("Health declaration gate")
APP_SHORT_NAME = N_("Gate")
NOT_ACCEPTED = N_("The declaration was not accepted: check the details with the visitor and declare again.")


class QueuedDeclarationIn(BaseModel):
    fields: list[tuple[str, str]] = Field(max_length=3000, description="the form's (name, value) pairs")


def _lang(request: Request) -> str:
    return getattr(request.state, "lang", "vi")


@router.get("/gate/sw.js")
async def service_worker() -> Response:
    """The gate's service worker, served under /gate/ so that its scope is the gate console."""
    return Response((STATIC / "gate_sw.js").read_bytes(), media_type="text/javascript",
                    headers={"service-worker-allowed": "/gate"})  # no-store by default: always the newest


@router.get("/gate/manifest.webmanifest")
async def manifest(request: Request) -> Response:
    lang = _lang(request)
    body = {
        "name": translate(APP_NAME, lang), "short_name": translate(APP_SHORT_NAME, lang), "lang": lang,
        "start_url": "/gate", "scope": "/gate", "display": "standalone",
        "background_color": "#ffffff", "theme_color": "#0b4a5a",
        "icons": [{"src": "/static/declaration/gate-icon.svg", "sizes": "any", "type": "image/svg+xml"},
                  {"src": "/static/declaration/gate-icon-192.png", "sizes": "192x192", "type": "image/png"},
                  {"src": "/static/declaration/gate-icon-512.png", "sizes": "512x512", "type": "image/png"}],
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/manifest+json")


@router.get("/gate/{venue_id}/shell")
async def gate_shell(request: Request, venue_id: UUID, principal: Principal = Depends(gate_user)) -> Response:
    """The gate screen as the service worker keeps it: no personal data in it."""
    venue = await _venue(request, principal, venue_id)
    return await _gate_page(request, venue, shell=True)


@api_router.get("/session")
async def gate_session(request: Request, _: Principal = Depends(require(*GATE_ROLES))) -> dict:
    """The CSRF token of the present sign-in, for a gate page opened from its offline shell."""
    return {"csrf_token": getattr(request.state, "csrf_token", "")}


def _problem(request: Request, status: int, kind: str, message: str, errors: dict | None = None) -> JSONResponse:
    lang = _lang(request)
    return JSONResponse({"type": f"urn:khaibao:gate:{kind}", "title": translate(message, lang), "status": status,
                         "errors": errors or {}}, status_code=status, media_type="application/problem+json")


@api_router.post("/{venue_id}/declarations")
async def queued_declaration(request: Request, venue_id: UUID,
                             principal: Principal = Depends(require(*GATE_ROLES))) -> Response:
    """An assisted declaration made offline, sent when the network returned: the form's fields
    as the page would have posted them, with the idempotency key made on the device (JSON, as
    every ``/api/`` route takes: libs/common/content_types.py)."""
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        venue = await venue_for_gate(session, principal, venue_id)
    try:
        queued = QueuedDeclarationIn.model_validate_json(await read_body(request, runtime.settings.max_body_bytes))
        form = Form(urlencode(queued.fields).encode())
    except BadBody as exc:
        return _problem(request, exc.status, "body", exc.message)
    except ValidationError:
        return _problem(request, 422, "invalid", NOT_ACCEPTED)
    people = read_people(form, runtime.extras["declaration"].max_group)
    try:
        data = DeclarationIn.model_validate(declaration_input(venue.code, people, form))
    except ValidationError as exc:
        errors = form_errors(exc, _lang(request), people)
        return _problem(request, 422, "invalid", NOT_ACCEPTED, errors)
    if not data.idempotency_key:
        return _problem(request, 422, "invalid", NOT_ACCEPTED, {"key": "missing"})
    try:
        answer, admitted = await declare_for_visitor(runtime, venue, principal, data)
    except DeclarationRefused as exc:
        return _problem(request, exc.status, exc.code, translate(exc.message, _lang(request), **exc.params))
    except (Overloaded, StoreUnavailable):
        return _problem(request, 503, "busy", BUSY)
    async with runtime.database.transaction(readonly=True) as session:
        counts = await count_today(session, venue.venue_id)
    return JSONResponse({
        "declarations": [{"id": item["id"], "result": item["result"], "ref": item["id"].replace("-", "")[-8:].upper(),
                          "valid_until": item["valid_until"]} for item in answer["declarations"]],
        "duplicate": answer["duplicate"], "admitted": admitted, "counts": counts,
    }, status_code=200 if answer["duplicate"] else 201)
