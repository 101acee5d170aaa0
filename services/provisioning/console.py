"""Sign-in, sign-out, password change, the provisioning console and the help pages."""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from libs.common import csrf
from libs.common.auth import SESSION_COOKIE, AuthError, Principal, Role, current_principal
from libs.common.console import console_user
from libs.common.menu import menu_roles
from libs.common.ratelimit import client_address
from libs.common.runtime import Runtime

from . import access, batches, signins
from .models import Unit
from .posters import typing_address
from .service import SignInFailed, WrongCurrentPassword, venues_visible_to
from .signins import throttle
from .signins.hashing import HashingBusy
from .signins.sessions import end_account_sessions, end_session
from .tokens import change_own_password, sign_in, signer_for
from .web import lang_of

router = APIRouter(include_in_schema=False)


def _safe_next(runtime: Runtime, target: str | None) -> str:
    """Only our own pages: a relative path or one of the consoles' origins."""
    if not target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        # Browsers drop tabs and newlines from URLs: "/\t/evil.example" would become "//evil.example".
        return "/"
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    parts = urlsplit(target)
    allowed = {urlsplit(u).netloc for u in runtime.settings.service_urls.values()}
    allowed.add(urlsplit(runtime.settings.public_base_url).netloc)
    if parts.scheme in ("http", "https") and parts.netloc in allowed:
        return target
    return "/"


def _set_session(response: Response, runtime: Runtime, principal: Principal, request: Request,
                 now: float | None = None) -> None:
    """HttpOnly (no script reads it), SameSite=Lax (another site's form posts without it),
    Secure in production and whenever the page came over HTTPS."""
    signer = signer_for(runtime)
    response.set_cookie(
        SESSION_COOKIE, signer.sign(principal, now=now), max_age=signer.ttl_seconds, httponly=True, samesite="lax",
        secure=runtime.settings.environment == "production" or request.url.scheme == "https", path="/",
    )


@router.get("/signin")
async def signin_page(request: Request, next: str | None = None):  # noqa: A002
    return request.app.state.templates.render(request, "provisioning/signin.html", {
        "next": _safe_next(request.app.state.runtime, next), "username": "", "error": None,
    })


@router.post("/signin")
async def signin(request: Request, username: str = Form("", max_length=80),
                 password: str = Form("", max_length=200), next: str = Form("/", max_length=2000)):  # noqa: A002
    runtime = request.app.state.runtime
    csrf.check_origin(request)  # no session yet: another site must not sign a browser in
    target = _safe_next(runtime, next)
    try:
        principal = await sign_in(runtime, username, password, address=client_address(request.scope))
    except SignInFailed as exc:
        return request.app.state.templates.render(request, "provisioning/signin.html", {
            "next": target, "username": username, "error": exc.message,
        }, status_code=401)
    except HashingBusy as exc:
        return request.app.state.templates.render(request, "provisioning/signin.html", {
            "next": target, "username": username, "error": exc.message,
        }, status_code=503, headers={"Retry-After": str(exc.retry_after)})
    response = RedirectResponse("/password" if principal.must_change_password else target, status_code=303)
    _set_session(response, runtime, principal, request)
    return response


@router.post("/signout")
async def signout(request: Request):
    csrf.ensure(request)
    runtime = request.app.state.runtime
    token = request.cookies.get(SESSION_COOKIE)
    principal = None
    if token:
        try:
            principal = runtime.verifier.verify(token)
        except AuthError:
            principal = None  # expired or not ours: nothing left to end
    if principal is not None:
        # The session ends in every service, not only in this browser (libs/common/sessions.py),
        # and the sign-out is on the record, in the same transaction.
        async with runtime.database.transaction() as session:
            await end_session(session, principal.claims)
            await signins.record_principal(session, principal, event="signout", outcome="success",
                                           address=client_address(request.scope))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=request.app.state.runtime.settings.environment == "production"
                           or request.url.scheme == "https")
    return response


async def _password_page(request: Request, principal: Principal, error: str | None = None,
                         status_code: int = 200, headers: dict | None = None) -> Response:
    """The password form, with the failed attempts on the account of the last 30 days."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        failures = await throttle.recent_failures(session, UUID(principal.account_id))
    return request.app.state.templates.render(request, "provisioning/password.html", {
        "forced": principal.must_change_password, "error": error, "failures": failures,
        "failure_days": throttle.SHOWN_DAYS,
    }, status_code=status_code, headers=headers)


@router.get("/password")
async def password_page(request: Request, principal: Principal = Depends(console_user(password_change=True))):
    return await _password_page(request, principal)


@router.post("/password")
async def password_change(request: Request, current: str = Form("", max_length=200),
                          new: str = Form("", max_length=200), confirm: str = Form("", max_length=200),
                          principal: Principal = Depends(console_user(password_change=True))):
    runtime = request.app.state.runtime
    address = client_address(request.scope)
    error = None
    fresh_from = None
    if new != confirm:
        error = "Mật khẩu nhập lại không khớp / The two new passwords differ"
        await signins.record_principal(runtime, principal, event="password_change", outcome="refused",
                                       address=address, detail="confirm_mismatch")
    else:
        try:

            async def changed(session):  # noqa: ANN001, ANN202 - in the transaction that stores it
                # Every other session of the account ends; this one goes on with a fresh token.
                fresh = await end_account_sessions(
                    session, account_id=principal.account_id, jurisdiction=principal.jurisdiction,
                    reason="password_changed", token_ttl=runtime.settings.token_ttl_seconds)
                await signins.record_principal(session, principal, event="password_change", outcome="success",
                                               address=address)
                return fresh

            fresh_from = await change_own_password(runtime, principal, current, new, address=address, then=changed)
        except WrongCurrentPassword as exc:
            error = exc.message  # counted by the throttle and on the record already (tokens.py)
        except SignInFailed as exc:
            error = exc.message
            # Its own transaction: the change was rolled back, the attempt stays on the record.
            await signins.record_principal(runtime, principal, event="password_change", outcome=exc.outcome,
                                           address=address, detail=exc.reason)
        except HashingBusy as exc:
            return await _password_page(request, principal, exc.message, 503, {"Retry-After": str(exc.retry_after)})
    if error:
        return await _password_page(request, principal, error, 422)
    response = RedirectResponse("/?changed=1", status_code=303)
    _set_session(response, runtime, replace(principal, must_change_password=False), request, now=fresh_from)
    return response


@router.get("/")
async def home(request: Request, principal: Principal = Depends(console_user(*menu_roles("provisioning", "/")))):
    """The overview of the signed-in role: its work first, then the venues it can see."""
    runtime = request.app.state.runtime
    context: dict = {}
    async with runtime.database.transaction(readonly=True) as session:
        venues = await venues_visible_to(session, principal, limit=50)
        # Each gate with its unit: an area's list mixes many units' "Cổng chính".
        unit_ids = sorted({v.unit_id for v in venues}, key=str)
        context["unit_names"] = dict((await session.execute(
            select(Unit.id, Unit.name).where(Unit.id.in_(unit_ids)))).all()) if unit_ids else {}
        if principal.role in access.BATCH_VIEWERS:
            context["open_batches"] = await batches.summaries(session, principal, only_open=True, limit=10)
        unit_id = access.own_unit(principal)
        if unit_id is not None:
            context["unit"] = await session.get(Unit, unit_id)
    messages = [("success", "Đã đổi mật khẩu / Password changed")] if request.query_params.get("changed") else []
    return request.app.state.templates.render(request, "provisioning/home.html", {
        "venues": venues, "area": runtime.tree.label(principal.jurisdiction), "messages": messages,
        "role": str(principal.role), "tree": runtime.tree, **context,
    })


GUIDES = ("city", "district", "commune", "health", "unit", "gate", "visitor")
ROLE_GUIDE = {Role.CITY_DIC: "city", Role.DISTRICT_FOCAL: "district", Role.COMMUNE_FOCAL: "commune",
              Role.HEALTH_OFFICER: "health", Role.UNIT_ADMIN: "unit", Role.GATE_STAFF: "gate"}


def _signed_in_role(request: Request) -> str | None:
    """The guide of the visitor's role when a valid session comes with the request (help is public)."""
    try:
        return ROLE_GUIDE.get(current_principal(request).role)
    except Exception:  # noqa: BLE001 - not signed in, expired, or sign-in not ready: no highlight
        return None


@router.get("/help")
async def help_page(request: Request):
    """The user guide and the administration guide (circular 1.4): one guide per role."""
    return request.app.state.templates.render(request, "provisioning/help/index.html", {
        "roles": [str(r) for r in Role], "guides": GUIDES, "mine": _signed_in_role(request),
        "help_line": request.app.state.runtime.settings.help_line,
    })


@router.get("/help/{guide}")
async def help_guide(request: Request, guide: str):
    if guide not in GUIDES:
        raise HTTPException(404)
    lang = "en" if lang_of(request) == "en" else "vi"
    settings = request.app.state.runtime.settings
    return request.app.state.templates.render(request, f"provisioning/help/{lang}/{guide}.html", {
        "guide": guide, "guides": GUIDES, "help_line": settings.help_line,
        "declaration_base": settings.declaration_base(), "urls": settings.service_urls,
        "code_page": settings.declaration_base().rstrip("/") + "/v",
        "code_address": typing_address(settings.declaration_base()),
    })
