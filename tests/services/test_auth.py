"""Authentication and authorisation of every protected endpoint of every service.

The protected routes are discovered from the apps themselves (a route is protected when
its dependencies reach ``current_principal``; the roles it admits are those given to
``require(...)``), so that a route added later is covered without editing this file.
Each is asked with no token, a token signed with another key, an expired token, a forged
or mangled token, a wrong role and a token that must first change its password; nothing
may answer 500.
"""
from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import pytest_asyncio

from libs.common.auth import SESSION_COOKIE, Role, current_principal, generate_key_pair
from libs.common.settings import SERVICES

from .conftest import (
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    Minter,
    build_settings,
    make_keys,
    run_services,
    service_url,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

JSON = {"accept": "application/json"}
HTML = {"accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
DOWNLOAD_TYPES = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/pdf", "application/zip",
    "text/csv",
}
ALL_ROLES = tuple(Role)
DUMMY_UUID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Protected:
    service: str
    method: str
    path: str            # the route template
    roles: frozenset     # admitted roles; empty = any signed-in role
    password_change: bool

    @property
    def api(self) -> bool:
        return self.path.startswith("/api")

    def url(self) -> str:
        """The template with harmless values for its path parameters."""
        path = self.path
        while "{" in path:
            start, end = path.index("{"), path.index("}")
            name = path[start + 1:end].split(":")[0]
            value = DUMMY_UUID if name == "id" or name.endswith("_id") else "ABCD2345XY"
            path = path[:start] + value + path[end + 1:]
        return path

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.path}"


def _route_contexts(app):  # noqa: ANN001, ANN202
    """(effective path, route) for every route, including those of included routers."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI: included routes are flattened into app.routes
        return [(getattr(r, "path", None), r) for r in app.routes]
    return [(rc.path, rc.original_route) for rc in iter_route_contexts(app.routes)]


def _dependants(dependant):  # noqa: ANN001, ANN202
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def protected_routes(service: str, app) -> list[Protected]:  # noqa: ANN001
    found = []
    for path, route in _route_contexts(app):
        dependant = getattr(route, "dependant", None)
        if dependant is None or path is None:
            continue
        calls = [d.call for d in _dependants(dependant)]
        if current_principal not in calls:
            continue
        roles, password_change = frozenset(), False
        for call in calls:
            if getattr(call, "__qualname__", "").startswith("require.<locals>"):
                nonlocals = inspect.getclosurevars(call).nonlocals
                roles, password_change = nonlocals["allowed"], nonlocals["password_change"]
        for method in sorted(route.methods - {"HEAD"}):
            found.append(Protected(service, method, path, roles, password_change))
    return found


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(tmp_path_factory):
    keys = make_keys(tmp_path_factory.mktemp("auth") / "data")
    other = tmp_path_factory.mktemp("other-key")
    generate_key_pair(other / "private.pem", other / "public.pem")
    async with run_services({s: build_settings(s, keys) for s in SERVICES}) as system:
        system.extra["minter"] = Minter(keys.private)
        system.extra["other_key"] = other / "private.pem"
        system.extra["routes"] = [r for s in SERVICES for r in protected_routes(s, system.apps[s])]
        yield system


@pytest.fixture
def minter(running) -> Minter:
    return running.extra["minter"]


def _allowed_role(route: Protected) -> Role:
    for role in (Role.CITY_DIC, Role.UNIT_ADMIN, *ALL_ROLES):
        if not route.roles or role in route.roles:
            return role
    raise AssertionError(f"{route} admits no role")


def _jurisdiction(role: Role) -> str:
    return {Role.CITY_DIC: CITY, Role.DISTRICT_FOCAL: DEMO_DISTRICT,
            Role.HEALTH_OFFICER: DEMO_DISTRICT}.get(role, DEMO_COMMUNE)


async def _call(running, route: Protected, headers: dict | None = None, cookies: dict | None = None):
    client = running[route.service]
    request = client.build_request(route.method, route.url(), headers=headers or {}, cookies=cookies)
    # Stateless: the client must not carry cookies from one case into the next.
    client.cookies.clear()
    response = await client.send(request, follow_redirects=False)
    client.cookies.clear()
    assert response.status_code != 500, f"{route}: 500 {response.text[:300]}"
    return response


def _assert_unauthenticated(route: Protected, response, html: bool) -> None:
    if html and not route.api:
        assert response.status_code == 303, f"{route}: {response.status_code} {response.text[:200]}"
        if (route.service, route.path) == ("declaration", "/") and SESSION_COOKIE not in response.request.headers.get(
                "cookie", ""):
            # A visitor without a session at the declaration service's root is sent to the
            # page where a venue code is typed, not to the officials' sign-in (issue 18.1).
            assert response.headers["location"] == "/v"
            return
        location = urlsplit(response.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == service_url("provisioning") + "/signin"
        back = parse_qs(location.query)["next"][0]
        assert back == service_url(route.service) + route.url(), route
    else:
        assert response.status_code == 401, f"{route}: {response.status_code} {response.text[:200]}"
        assert response.headers["content-type"].startswith("application/problem+json")  # RFC 9457
        assert response.headers.get("www-authenticate") == "Bearer"
        assert response.json()["detail"]


async def test_every_service_has_protected_endpoints(running):
    routes = running.extra["routes"]
    by_service = {s: [str(r) for r in routes if r.service == s] for s in SERVICES}
    assert all(by_service.values()), by_service
    known = {str(r) for r in routes}
    # The endpoints the brief names must be among them (more may be added later).
    for expected in ("intake GET /api/registrations", "intake GET /", "provisioning GET /api/me",
                     "provisioning GET /api/venues", "provisioning GET /", "provisioning GET /password",
                     "provisioning POST /password", "declaration GET /", "notification GET /api/notices",
                     "notification GET /", "reporting GET /api/registrations/counts", "reporting GET /"):
        assert expected in known, (expected, sorted(known))
    # ... and the public ones must not be.
    for public in ("intake POST /api/registrations", "provisioning POST /api/token", "provisioning GET /signin",
                   "provisioning POST /signin", "provisioning POST /signout", "provisioning GET /help",
                   "declaration GET /api/venues/{code}"):
        assert public not in known, public


async def test_missing_token(running):
    for route in running.extra["routes"]:
        _assert_unauthenticated(route, await _call(running, route, JSON), html=False)
        _assert_unauthenticated(route, await _call(running, route, HTML), html=True)


async def test_token_signed_with_another_key(running, minter):
    for route in running.extra["routes"]:
        role = _allowed_role(route)
        token = minter.token(role, _jurisdiction(role), private_key_file=running.extra["other_key"])
        bearer = {"authorization": f"Bearer {token}"}
        _assert_unauthenticated(route, await _call(running, route, {**JSON, **bearer}), html=False)
        # The same forged token in the session cookie of a browser.
        _assert_unauthenticated(route, await _call(running, route, HTML, {SESSION_COOKIE: token}), html=True)


async def test_expired_token(running, minter):
    for route in running.extra["routes"]:
        role = _allowed_role(route)
        token = minter.token(role, _jurisdiction(role), ttl_seconds=60, now=time.time() - 3600)
        response = await _call(running, route, {**JSON, "authorization": f"Bearer {token}"})
        _assert_unauthenticated(route, response, html=False)
        assert "hết hạn" in response.json()["detail"]
        _assert_unauthenticated(route, await _call(running, route, HTML, {SESSION_COOKIE: token}), html=True)


async def test_malformed_and_forged_tokens(running, minter):
    valid = minter.token(Role.CITY_DIC, CITY)
    claims = jwt.decode(valid, options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    hs256 = jwt.encode(claims, "a-shared-secret-that-nobody-should-accept!", algorithm="HS256")
    header, payload, signature = valid.split(".")
    tampered_claims = {**claims, "role": "city_dic", "jur": "79", "usr": "mallory"}
    tampered = ".".join([header, jwt.utils.base64url_encode(
        json.dumps(tampered_claims).encode()).decode(), signature])
    other_audience = jwt.encode({**claims, "aud": "someone-else"}, minter_private(minter), algorithm="EdDSA")
    other_issuer = jwt.encode({**claims, "iss": "evil"}, minter_private(minter), algorithm="EdDSA")
    no_role = jwt.encode({k: v for k, v in claims.items() if k != "role"}, minter_private(minter), algorithm="EdDSA")
    bad_role = jwt.encode({**claims, "role": "superuser"}, minter_private(minter), algorithm="EdDSA")
    unit_without_unit = jwt.encode({**claims, "role": "unit_admin"}, minter_private(minter), algorithm="EdDSA")
    not_yet = jwt.encode({**claims, "nbf": int(time.time()) + 3600, "iat": int(time.time()) + 3600},
                         minter_private(minter), algorithm="EdDSA")
    bad = ["garbage", "a.b.c", unsigned, hs256, tampered, other_audience, other_issuer, no_role, bad_role,
           unit_without_unit, not_yet, valid + "x", "ü" * 10]
    for route in running.extra["routes"]:
        for token in bad:
            headers = {**JSON, "authorization": f"Bearer {token}".encode()}
            _assert_unauthenticated(route, await _call(running, route, headers), html=False)


def minter_private(minter: Minter):  # noqa: ANN201
    from libs.common.auth import load_private_key

    return load_private_key(minter.private_key_file)


async def test_wrong_role_is_forbidden(running, minter):
    checked = 0
    for route in running.extra["routes"]:
        for role in ALL_ROLES:
            if not route.roles or role in route.roles:
                continue
            checked += 1
            headers = minter.headers(role, _jurisdiction(role))
            response = await _call(running, route, {**JSON, **headers})
            assert response.status_code == 403, f"{route} as {role}: {response.status_code} {response.text[:200]}"
            assert "quyền" in response.json()["detail"]
            page = await _call(running, route, {**HTML, **headers})
            if route.api:
                assert page.status_code == 403
            else:  # a friendly page, not a redirect loop to the sign-in page
                assert page.status_code == 403, f"{route} as {role}: {page.status_code}"
                assert page.headers["content-type"].startswith("text/html")
                assert "Không có quyền truy cập" in page.text
    # the officials' endpoints exist: unit roles were refused somewhere
    assert checked >= 8


# The purpose that person-level reads require (services/reporting/fhir/purposes.py); ignored elsewhere.
PURPOSE = {"x-purpose": "case_investigation", "x-case-reference": "TEST-2021-0001"}


async def test_admitted_roles_get_through(running, minter):
    for route in running.extra["routes"]:
        for role in ALL_ROLES:
            if route.roles and role not in route.roles:
                continue
            headers = {**minter.headers(role, _jurisdiction(role)), **PURPOSE}
            response = await _call(running, route, {**JSON, **headers})
            assert response.status_code not in (401, 403), f"{route} as {role}: {response.text[:200]}"
            if route.method == "GET":
                allowed = (200, 404) if route.api else (200, 303, 404)
                assert response.status_code in allowed, f"{route} as {role}: {response.status_code}"
            if route.method != "GET":
                continue  # a change through the cookie also needs the CSRF token (tests/reliability)
            # the same token carried by the browser's session cookie
            page = await _call(running, route, HTML, {SESSION_COOKIE: minter.token(role, _jurisdiction(role))})
            assert page.status_code not in (401, 403), f"{route} as {role} (cookie): {page.status_code}"
            if route.method == "GET" and not route.api and "{" in route.path:
                assert page.status_code in (200, 404), f"{route} as {role} (cookie): {page.status_code}"
            elif route.method == "GET" and not route.api and page.status_code == 303:
                # a console link that leads to a public file (the district's list template)
                assert page.headers["location"].startswith("/"), f"{route} as {role}: {page.headers['location']}"
            elif route.method == "GET" and not route.api:
                assert page.status_code == 200, f"{route} as {role} (cookie): {page.status_code}"
                # a page, or a file the page links to (list templates, posters, reports)
                assert page.headers["content-type"].split(";")[0] in DOWNLOAD_TYPES | {"text/html"}


async def test_password_change_required(running, minter):
    for route in running.extra["routes"]:
        role = _allowed_role(route)
        headers = minter.headers(role, _jurisdiction(role), must_change_password=True)
        response = await _call(running, route, {**JSON, **headers})
        if route.password_change:
            assert response.status_code not in (401, 403), str(route)
            continue
        assert response.status_code == 403, f"{route}: {response.status_code}"
        assert "đổi mật khẩu" in response.json()["detail"]
        page = await _call(running, route, {**HTML, **headers})
        if route.api:
            assert page.status_code == 403
        else:
            assert page.status_code == 303, f"{route}: {page.status_code}"
            assert page.headers["location"] == service_url("provisioning") + "/password"


async def test_password_page_accepts_a_token_that_must_change(running, minter):
    token = minter.token(Role.COMMUNE_FOCAL, DEMO_COMMUNE, must_change_password=True)
    client = running["provisioning"]
    client.cookies.clear()
    response = await client.get("/password", headers=HTML, cookies={SESSION_COOKIE: token})
    client.cookies.clear()
    assert response.status_code == 200
    assert "Đổi mật khẩu" in response.text


async def test_no_route_answers_500_to_garbage(running, minter):
    """Every route of every service (public ones too), with and without a token, with a
    body that is not what it expects."""
    bodies = [b"", b"{", b'{"username": 1}', b"\xff\xfe", b"username=%ZZ&password=" + b"x" * 300]
    token = minter.headers(Role.CITY_DIC, CITY)
    for service in SERVICES:
        app = running.apps[service]
        for path, route in _route_contexts(app):
            methods = getattr(route, "methods", None)
            if not methods or path is None or path in ("/metrics",):
                continue
            url = Protected(service, "GET", path, frozenset(), False).url()
            for method in sorted(methods - {"HEAD"}):
                for body in bodies if method != "GET" else [b""]:
                    for headers in ({}, token):
                        for content_type in ("application/json", "application/x-www-form-urlencoded"):
                            client = running[service]
                            client.cookies.clear()
                            response = await client.request(
                                method, url, content=body,
                                headers={**headers, "content-type": content_type, "accept": "text/html"})
                            assert response.status_code < 500, f"{service} {method} {path}: {response.status_code}"
    running["provisioning"].cookies.clear()
