"""Web hardening: security headers on every HTML page, cookies, CSRF on every console form.

Every GET route of every service that answers HTML (discovered from the route tables,
asked as a signed-in official or unit admitted by the route, or anonymously when public)
must carry a strict CSP (no 'unsafe-inline', frame-ancestors 'none'), X-Frame-Options,
nosniff, a referrer policy and ``Cache-Control: no-store`` (pages carry personal data,
passes, or a capability in their URL), and contain no inline script or style attribute
(the CSP would block them). Every JSON answer is ``no-store`` too, the declaration's
answers and result pages first among them; only static assets and the public reference
data (the places, the pass keys) may be cached. HSTS in production only. The session cookie is HttpOnly, SameSite and
Secure over HTTPS. A console form posted without the page's token, or from another site,
is refused with a Vietnamese page (English with ?lang=en) and changes nothing.
"""
from __future__ import annotations

import re
from http.cookies import SimpleCookie

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from libs.common.auth import SESSION_COOKIE, Role
from libs.common.csrf import token_for
from libs.common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
from libs.common.settings import SERVICES
from tests.services.conftest import create_app, csrf_in
from tests.services.test_auth import _route_contexts, protected_routes

from .conftest import (
    CITY,
    Minter,
    build_settings,
    client_for,
    demo_system,
    make_keys,
    record_figure,
)
from .test_authz_matrix import PUBLIC, fill, principal_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

HTML = {"accept": "text/html"}
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.I)
HANDLER_ATTRIBUTE = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
# Swagger UI (/api/docs) is self-hosted with no inline script (libs/common/apidocs.py): it is
# checked like every other page. FastAPI's own OAuth2 redirect page is not served.
SWAGGER_UI = {"/docs/oauth2-redirect"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory):
    async with demo_system(tmp_path_factory.mktemp("hardening") / "data") as running:
        yield running


def check_headers(where: str, response: httpx.Response) -> list[str]:
    problems = []
    csp = response.headers.get("content-security-policy", "")
    if not csp or "unsafe-inline" in csp or "unsafe-eval" in csp:
        problems.append(f"{where}: CSP {csp!r}")
    if "frame-ancestors 'none'" not in csp or "script-src 'self'" not in csp or "style-src 'self'" not in csp:
        problems.append(f"{where}: CSP without frame-ancestors/script-src/style-src {csp!r}")
    if response.headers.get("x-frame-options") != "DENY":
        problems.append(f"{where}: X-Frame-Options")
    if response.headers.get("x-content-type-options") != "nosniff":
        problems.append(f"{where}: X-Content-Type-Options")
    if not response.headers.get("referrer-policy"):
        problems.append(f"{where}: Referrer-Policy")
    if "strict-transport-security" in response.headers:
        problems.append(f"{where}: HSTS outside production")
    # Swagger UI (no personal data) asks to be revalidated: no-cache.
    if "no-store" not in response.headers.get("cache-control", "") and " GET /api/docs" not in where:
        problems.append(f"{where}: Cache-Control {response.headers.get('cache-control')!r}")
    body = response.text
    for name, pattern in (("inline script", INLINE_SCRIPT), ("style attribute", STYLE_ATTRIBUTE),
                          ("event handler attribute", HANDLER_ATTRIBUTE)):
        if pattern.search(body):
            problems.append(f"{where}: {name}: {pattern.search(body).group(0)[:120]}")
    return problems


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_every_html_page_carries_the_security_headers(system):
    minter: Minter = system.extra["minter"]
    ids = {"unit_id": "00000000-0000-4000-8000-000000000001"}
    pages, problems = 0, []
    for service in SERVICES:
        app = system.apps[service]
        protected = {(r.method, r.path): r for r in protected_routes(service, app)}
        for path, route in _route_contexts(app):
            if path is None or "GET" not in (getattr(route, "methods", None) or ()):
                continue
            if path in SWAGGER_UI:
                continue
            guarded = protected.get(("GET", path))
            if guarded is None and f"{service} GET {path}" not in PUBLIC:
                continue  # the authorization matrix fails on it
            headers = dict(HTML)
            if guarded is not None:
                role = next(r for r in (Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL, *Role)
                            if not guarded.roles or r in guarded.roles)
                headers["authorization"] = f"Bearer {principal_token(minter, role, 'own', ids)}"
                url, _ = fill(guarded, ids, real=False)
            else:
                from tests.services.test_auth import Protected
                url = Protected(service, "GET", path, frozenset(), False).url()
            for suffix in ("", "?lang=en"):
                response = await system[service].get(url + suffix, headers=headers)
                assert response.status_code < 500, f"{service} {url}: {response.status_code}"
                if response.headers.get("content-type", "").startswith("text/html"):
                    pages += 1
                    problems += check_headers(f"{service} GET {url}{suffix} ({response.status_code})", response)
    record_figure("web hardening", html_pages=pages, header_problems=len(problems))
    assert pages >= 40, pages
    assert not problems, "\n".join(problems[:40])


async def test_hsts_in_production_only(tmp_path):
    keys = make_keys(tmp_path / "data")
    production = build_settings("provisioning", keys, environment="production", secret_key="s" * 48)
    app = create_app("provisioning", production)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://provisioning.test") as c:
        response = await c.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    app = create_app("provisioning", build_settings("provisioning", keys))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://provisioning.test") as c:
        assert "strict-transport-security" not in (await c.get("/healthz")).headers


def _session_cookie(response: httpx.Response) -> SimpleCookie:
    cookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(SESSION_COOKIE + "="):
            cookie.load(header)
    return cookie


async def test_session_cookie_is_httponly_samesite_and_secure_over_https(system):
    username = DEMO_ACCOUNTS[0][0]   # the demo city account
    app = system.apps["provisioning"]
    for base, secure in (("http://provisioning.test", False), ("https://provisioning.test", True)):
        async with client_for(app, base) as client:
            response = await client.post("/signin", data={"username": username, "password": DEMO_PASSWORD},
                                         headers=HTML)
            assert response.status_code == 303, response.text[:300]
            morsel = _session_cookie(response)[SESSION_COOKIE]
            assert morsel["httponly"] and morsel["samesite"].lower() == "lax" and morsel["path"] == "/"
            assert bool(morsel["secure"]) is secure, base
    # Another site cannot sign a browser in (login CSRF): refused, no cookie.
    async with client_for(app, "http://provisioning.test") as client:
        response = await client.post("/signin", data={"username": username, "password": DEMO_PASSWORD},
                                     headers={**HTML, "origin": "https://evil.example"})
        assert response.status_code == 403 and "hết hiệu lực" in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_console_forms_need_the_page_token(system):
    """A real form: the provisioning venue rename. Without the token, from another site, or
    with another session's token: refused and nothing renamed; with it: renamed."""
    from services.provisioning.models import Venue

    runtime = system.runtime("provisioning")
    async with runtime.database.transaction(readonly=True) as session:
        venue = (await session.execute(select(Venue))).scalars().first()
    minter: Minter = system.extra["minter"]
    token = minter.token(Role.CITY_DIC, CITY)
    other_session = minter.token(Role.CITY_DIC, CITY)
    client = system["provisioning"]
    secret = system.settings["provisioning"].secret_key
    url = f"/venues/{venue.id}/rename"
    form = {"name": "Cổng đổi tên bởi trang khác", "address": "1 Đường Số 1"}

    async def post(data: dict, headers: dict | None = None, lang: str = "") -> httpx.Response:
        client.cookies.clear()
        response = await client.post(url + lang, data=data, headers={**HTML, **(headers or {})},
                                     cookies={SESSION_COOKIE: token})
        client.cookies.clear()
        return response

    async def name() -> str:
        async with runtime.database.transaction(readonly=True) as session:
            return (await session.get(Venue, venue.id)).name

    before = await name()
    refused = [
        await post(form),
        await post({**form, "csrf_token": "0" * 32}),
        await post({**form, "csrf_token": token_for(secret, other_session)}),
        await post({**form, "csrf_token": token_for(secret, token)}, {"origin": "https://evil.example"}),
        await post({**form, "csrf_token": token_for(secret, token)}, {"referer": "https://evil.example/page"}),
    ]
    for response in refused:
        assert response.status_code == 403 and "Trang đã hết hiệu lực" in response.text
        assert "Hãy mở lại trang" in response.text
    english = await post(form, lang="?lang=en")
    assert english.status_code == 403 and "The page has expired" in english.text
    assert await name() == before
    # The page's own token in the form, or in the header (scripts), from our own origin: accepted.
    page = await client.get(f"/venues/{venue.id}", headers=HTML, cookies={SESSION_COOKIE: token})
    client.cookies.clear()
    from_page = csrf_in(page.text)
    done = await post({**form, "csrf_token": from_page}, {"origin": "http://provisioning.test"})
    assert done.status_code == 303, done.text[:300]
    assert await name() == form["name"]
    again = await post({**form, "name": "Cổng chính"}, {"x-csrf-token": from_page})
    assert again.status_code == 303 and await name() == "Cổng chính"
    # A bearer token (API clients, no ambient credential) needs no CSRF token.
    client.cookies.clear()
    api = await client.post(url, data={**form, "name": "Cổng API"},
                            headers={**HTML, "authorization": f"Bearer {token}"})
    assert api.status_code == 303 and await name() == "Cổng API"
    record_figure("web hardening", csrf_cases=len(refused) + 4)


# Public reference data, the same for everyone: the only JSON that may be cached.
CACHEABLE = {"declaration GET /api/places/{code}.json": "public, max-age=86400",
             "declaration GET /api/pass-keys": "public, max-age=3600"}


def no_store(response: httpx.Response) -> bool:
    return "no-store" in response.headers.get("cache-control", "")


@pytest.mark.slow
async def test_every_api_answer_is_no_store(system):
    """Every GET under /api/ of every service, asked with a token its route admits."""
    minter: Minter = system.extra["minter"]
    ids = {"unit_id": "00000000-0000-4000-8000-000000000001"}
    answers, problems = 0, []
    for service in SERVICES:
        app = system.apps[service]
        protected = {(r.method, r.path): r for r in protected_routes(service, app)}
        for path, route in _route_contexts(app):
            if path is None or not path.startswith("/api/") or "GET" not in (getattr(route, "methods", None) or ()):
                continue
            guarded = protected.get(("GET", path))
            headers = {"accept": "application/json"}
            if guarded is not None:
                role = next(r for r in (Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL, *Role)
                            if not guarded.roles or r in guarded.roles)
                headers["authorization"] = f"Bearer {principal_token(minter, role, 'own', ids)}"
                url, _ = fill(guarded, ids, real=False)
            else:
                from tests.services.test_auth import Protected
                url = Protected(service, "GET", path, frozenset(), False).url()
            response = await system[service].get(url, headers=headers)
            answers += 1
            cacheable = CACHEABLE.get(f"{service} GET {path}")
            if cacheable is not None and response.status_code == 200:
                if response.headers.get("cache-control") != cacheable:
                    problems.append(f"{service} GET {url}: lost its caching {response.headers.get('cache-control')}")
            elif path != "/api/docs" and not no_store(response):
                problems.append(f"{service} GET {url} ({response.status_code}): "
                                f"Cache-Control {response.headers.get('cache-control')!r}")
    record_figure("web hardening", api_answers_no_store=answers)
    assert answers >= 25, answers
    assert not problems, "\n".join(problems)


async def test_declaration_answers_and_result_pages_are_no_store(system):
    """The answers that carry a person's data or pass, HTML and JSON, every status; the
    result page whose URL holds its capability token; the gate's pages showing a person."""
    from services.provisioning.models import Venue

    from .test_content_types import declaration_body, demo_venue_code

    code = await demo_venue_code(system)
    async with system.runtime("provisioning").database.transaction(readonly=True) as session:
        venue = (await session.execute(select(Venue).where(Venue.code == code))).scalars().one()
    client = system["declaration"]
    client.cookies.clear()
    json_type = {"content-type": "application/json"}
    body = declaration_body(code)
    answers = {
        "201": await client.post("/api/declarations", content=body, headers=json_type),
        "200 duplicate": await client.post("/api/declarations", content=body, headers=json_type),
        "409 key reused": await client.post("/api/declarations", headers=json_type, content=body.replace(
            "Nguyễn Văn An".encode(), "Trần Thị Bình".encode())),
        "422": await client.post("/api/declarations", content=b"{}", headers=json_type),
        "415": await client.post("/api/declarations", content=body, headers={"content-type": "text/plain"}),
    }
    assert [r.status_code for r in answers.values()] == [201, 200, 409, 422, 415]
    html = {"accept": "text/html"}
    form = {"count": "1", "p0.full_name": "Nguyễn Văn An", "p0.id_type": "cccd", "p0.id_number": "079099012345",
            "p0.birth": "01/02/1990", "p0.gender": "male", "p0.nationality": "Việt Nam", "p0.phone": "0909123456",
            "p0.province_code": "79", "p0.district_code": "787", "p0.commune_code": "27664",
            "p0.street": "12 Lương Văn Nho", "consent": "1", "action": "submit", "key": "nostore-form-1"}
    answers["public form"] = await client.get(f"/v/{code}", headers=html)
    answers["public form sent (303 to the result)"] = sent = await client.post(f"/v/{code}", data=form, headers=html)
    # The result page's capability is a short-lived HttpOnly cookie scoped to that page, not in its URL.
    assert sent.status_code == 303 and "?" not in sent.headers["location"]
    capability = sent.headers["set-cookie"].lower()
    assert "httponly" in capability and "max-age=1800" in capability and "samesite=lax" in capability
    assert f"path={sent.headers['location'].lower()}" in capability
    answers["result page"] = result = await client.get(sent.headers["location"], headers=html)
    assert result.status_code == 200 and "Nguyễn Văn An" in result.text
    gate_token = system.extra["minter"].token(Role.GATE_STAFF, venue.commune_path, unit_id=str(venue.unit_id))
    client.cookies.set(SESSION_COOKIE, gate_token)
    try:
        answers["gate"] = gate = await client.get(f"/gate/{venue.id}", headers=html)
        assert gate.status_code == 200, gate.text[:300]
        csrf = csrf_in(gate.text)
        answers["gate assisted form"] = await client.get(f"/gate/{venue.id}/declare", headers=html)
        answers["gate assisted result"] = assisted = await client.post(
            f"/gate/{venue.id}/declare", headers=html, data={**form, "key": "nostore-gate-1", "csrf_token": csrf})
        assert assisted.status_code == 200 and "Nguyễn Văn An" in assisted.text
        answers["gate scan prefill"] = await client.post(
            f"/gate/{venue.id}/scan", headers=html, data={"csrf_token": csrf,
                                                          "code": "079099012345|123456789|Nguyễn Văn An|01021990|Nam|"
                                                                  "12 Lương Văn Nho, Cần Thạnh, Cần Giờ, TP.HCM|01012021"})
    finally:
        client.cookies.clear()
    missing = {name: r.headers.get("cache-control") for name, r in answers.items() if not no_store(r)}
    assert not missing, missing
    # Static assets stay cacheable (no personal data).
    for service in SERVICES:
        asset = await system[service].get("/static/common/khaibao.css")
        assert asset.status_code == 200 and not no_store(asset), service
    record_figure("web hardening", declaration_answers_no_store=len(answers))
