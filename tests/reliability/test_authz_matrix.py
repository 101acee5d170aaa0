"""The authorization matrix: every endpoint x every role x own / other jurisdiction.

The endpoints come from the five apps' route tables, so an endpoint added later is in the
matrix without editing this file; one that no dependency protects must be on the explicit
public allow-list below, or the test fails. The roles an endpoint admits are read from
its ``require(...)`` / ``console_user(...)`` dependency.

Cells, per protected endpoint:

* no token, a token signed with another key: 401;
* each role that the endpoint does not admit, in its own and in another jurisdiction: 403;
* each admitted role in its own jurisdiction: neither 401 nor 403 nor 5xx (real ids of the
  demo unit where the endpoint reads an object: its page answers);
* each admitted role in another jurisdiction (another district, another commune of the
  same district, another unit of the same commune), with the real ids of the first
  jurisdiction's objects: refused (403/404, or 422 for a form it cannot even read),
  never the object, and nothing changed;
* each console form (POST without /api) through the browser's session cookie, without
  the page's CSRF token, or with it but sent from another site: 403.
"""
from __future__ import annotations

import collections
import uuid

import pytest
import pytest_asyncio
from sqlalchemy import select

from libs.common.auth import SESSION_COOKIE, Role, generate_key_pair
from libs.common.content_types import ContentTypeMiddleware
from libs.common.csrf import token_for
from libs.common.settings import SERVICES
from tests.services.test_auth import DUMMY_UUID, Protected, _route_contexts, protected_routes

from .conftest import (
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    OTHER_COMMUNE,
    OTHER_DISTRICT,
    Minter,
    demo_system,
    eventually,
    record_figure,
    registration,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}

# Endpoints that answer without a sign-in, on purpose. A new unprotected endpoint fails
# the test until it is either protected or added here.
PUBLIC = {
    *(f"{s} GET {p}" for s in SERVICES for p in ("/api/openapi.json", "/api/docs", "/docs/oauth2-redirect",
                                                  "/healthz", "/readyz", "/metrics")),
    # intake: the units' self-registration, its status page and the districts' list templates
    "intake POST /api/registrations", "intake GET /api/status/{reference}/{token}", "intake GET /d",
    "intake GET /d/{code}", "intake GET /d/{code}/register", "intake POST /d/{code}/register",
    "intake GET /d/{code}/mau-danh-sach.xlsx", "intake GET /status", "intake POST /status",
    "intake GET /status/{reference}/{token}",
    # provisioning: sign-in (origin-checked), sign-out (CSRF-checked when signed in), help
    "provisioning POST /api/token", "provisioning GET /signin", "provisioning POST /signin",
    # provisioning: the interoperability clients' client-credentials grant (their id and secret)
    "provisioning POST /api/oauth/token",
    "provisioning POST /signout", "provisioning GET /help", "provisioning GET /help/{guide}",
    # declaration: the visitors' QR endpoint and what the gate's offline check needs
    "declaration POST /api/declarations", "declaration GET /api/venues/{code}",
    "declaration GET /api/places/{code}.json", "declaration GET /api/pass-keys", "declaration GET /v",
    "declaration GET /v/{code}", "declaration POST /v/{code}", "declaration GET /v/{code}/done/{submission_id}",
    # declaration: the installable gate console's service worker and manifest (code, no data)
    "declaration GET /gate/sw.js", "declaration GET /gate/manifest.webmanifest",
}

# Another jurisdiction for each role (the city has none): another district, another
# commune of the same district, another unit of the same commune.
# An interoperability client is granted a district here, so that its "other" is tested too.
OWN = {Role.CITY_DIC: CITY, Role.DISTRICT_FOCAL: DEMO_DISTRICT, Role.HEALTH_OFFICER: DEMO_DISTRICT,
       Role.COMMUNE_FOCAL: DEMO_COMMUNE, Role.UNIT_ADMIN: DEMO_COMMUNE, Role.GATE_STAFF: DEMO_COMMUNE,
       Role.INTEROP_CLIENT: DEMO_DISTRICT}
OTHER = {Role.DISTRICT_FOCAL: OTHER_DISTRICT, Role.HEALTH_OFFICER: OTHER_DISTRICT,
         Role.COMMUNE_FOCAL: OTHER_COMMUNE, Role.UNIT_ADMIN: DEMO_COMMUNE, Role.GATE_STAFF: DEMO_COMMUNE,
         Role.INTEROP_CLIENT: OTHER_DISTRICT}
OTHER_UNIT = "00000000-0000-4000-8000-00000000abcd"

# Path parameters that are not ids of the demo objects: values that reach the use case.
NAMED_VALUES = {
    ("intake", "action"): "accept", ("intake", "decision"): "approve",
    ("provisioning", "action"): "disable", ("notification", "code"): DEMO_DISTRICT.rsplit("/", 1)[-1],
    ("provisioning", "code"): DEMO_COMMUNE.rsplit("/", 1)[-1],
}


def all_routes(service: str, app) -> list[str]:  # noqa: ANN001
    found = []
    for path, route in _route_contexts(app):
        methods = getattr(route, "methods", None)
        if methods and path is not None:
            found.extend(f"{service} {m} {path}" for m in sorted(methods - {"HEAD"}))
    return found


def fill(route: Protected, ids: dict[str, str], real: bool) -> tuple[str, bool]:
    """The route's URL with real ids of the demo unit's objects where known (``real``),
    else harmless values; and whether a real object id went in."""
    path, used = route.path, False
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        name = path[start + 1:end].split(":")[0]
        value = NAMED_VALUES.get((route.service, name))
        if value is None and real and name in ids:
            value, used = ids[name], True
        if value is None:
            value = DUMMY_UUID if name == "id" or name.endswith("_id") else "ABCD2345XY"
        path = path[:start] + value + path[end + 1:]
    return path, used


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory):
    from services.provisioning.models import Account, Venue

    other = tmp_path_factory.mktemp("matrix-other-key")
    generate_key_pair(other / "private.pem", other / "public.pem")
    async with demo_system(tmp_path_factory.mktemp("matrix") / "data") as system:
        minter = system.extra["minter"]
        city = minter.headers(Role.CITY_DIC, CITY)
        response = await system["intake"].post("/api/registrations", json=registration("27664"))
        assert response.status_code == 201, response.text
        runtime = system.runtime("provisioning")
        async with runtime.database.transaction(readonly=True) as session:
            venue = (await session.execute(select(Venue))).scalars().first()
            account = (await session.execute(select(Account).where(Account.unit_id == venue.unit_id))).scalars().first()

        async def settled():  # noqa: ANN202
            listed = await system["intake"].get("/api/registrations", headers=city)
            rows = listed.json() if isinstance(listed.json(), list) else listed.json().get("items", [])
            page = await system["declaration"].get("/", headers={**HTML, **city})
            return rows if rows and venue.code in page.text else None

        rows = await eventually(settled, timeout=60, what="the demo unit and a registration everywhere")
        ids = {"unit_id": str(venue.unit_id), "venue_id": str(venue.id), "registration_id": str(rows[0]["id"]),
               "account_id": str(account.id) if account else DUMMY_UUID}
        system.extra.update(minter=minter, other_key=other / "private.pem", ids=ids)
        yield system


def principal_token(minter: Minter, role: Role, where: str, ids: dict, **kwargs) -> str:  # noqa: ANN003
    if role in (Role.UNIT_ADMIN, Role.GATE_STAFF):
        unit = ids["unit_id"] if where == "own" else OTHER_UNIT
        return minter.token(role, OWN[role] if where == "own" else OTHER[role], unit_id=unit, **kwargs)
    return minter.token(role, OWN[role] if where == "own" else OTHER[role], **kwargs)


async def send(system, service: str, method: str, url: str, headers: dict, cookies: dict | None = None):  # noqa: ANN001, ANN201
    client = system[service]
    client.cookies.clear()
    request = client.build_request(method, url, headers=headers, cookies=cookies)
    client.cookies.clear()
    response = await client.send(request, follow_redirects=False)
    client.cookies.clear()
    return response


async def test_every_endpoint_is_protected_or_declared_public(world):
    unprotected = []
    for service in SERVICES:
        app = world.apps[service]
        protected = {f"{service} {r.method} {r.path}" for r in protected_routes(service, app)}
        unprotected += [r for r in all_routes(service, app) if r not in protected and r not in PUBLIC]
    assert not unprotected, (
        "endpoints without an authorization dependency and not on the public allow-list "
        f"of tests/reliability/test_authz_matrix.py: {unprotected}")


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_authorization_matrix(world):
    minter: Minter = world.extra["minter"]
    ids = world.extra["ids"]
    cells = collections.Counter()
    failures: list[str] = []
    proven_other = 0   # GET cells where the own principal got the object and the other one did not

    def check(ok: bool, cell: str, response) -> None:  # noqa: ANN001
        cells["total"] += 1
        if response.status_code >= 500:
            cells["server_errors"] += 1
        if not ok:
            failures.append(f"{cell}: {response.status_code} {response.text[:160]}")

    kinds = {s: ContentTypeMiddleware(None, world.apps[s].router.routes) for s in SERVICES}
    for service in SERVICES:
        for route in protected_routes(service, world.apps[service]):
            name = str(route)
            url, _ = fill(route, ids, real=False)
            response = await send(world, service, route.method, url, JSON)
            check(response.status_code == 401, f"{name} no token", response)
            forged = minter.token(Role.CITY_DIC, CITY, private_key_file=world.extra["other_key"])
            response = await send(world, service, route.method, url, {**JSON, "authorization": f"Bearer {forged}"})
            check(response.status_code == 401, f"{name} forged", response)
            for role in Role:
                admitted = not route.roles or role in route.roles
                for where in ("own", "other"):
                    if where == "other" and role == Role.CITY_DIC:
                        continue
                    real = where == "other" or route.method == "GET"
                    url, used = fill(route, ids, real=real)
                    bearer = {"authorization": f"Bearer {principal_token(minter, role, where, ids)}"}
                    if route.method == "GET":
                        response = await send(world, service, route.method, url, {**JSON, **bearer})
                    else:  # a body the use case accepts (confirmed), so that jurisdiction decides
                        # and of the type the route takes (JSON, or a form: the API's uploads too)
                        takes_json = kinds[service].kind_of(route.method, url) == "json"
                        body = {"json": {}} if takes_json else {"data": {"confirm": "yes", "reason": "kiểm thử"}}
                        world[service].cookies.clear()
                        response = await world[service].request(route.method, url, headers={**JSON, **bearer}, **body)
                    cell = f"{name} as {role} ({where}) {url}"
                    status = response.status_code
                    if not admitted:
                        check(status == 403, cell, response)
                    elif where == "own":
                        check(status not in (401, 403) and status < 500, cell, response)
                        if used and status == 200:
                            cells["own_objects_seen"] += 1
                    elif used:
                        refused = status in (403, 404) or (route.method != "GET" and status in (400, 422))
                        check(refused, cell, response)
                        if refused and route.method == "GET":
                            proven_other += 1
                    else:
                        check(status not in (401, 403) and status < 500, cell, response)
            if route.method != "GET" and not route.api:
                role = next(r for r in (Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL, *Role)
                            if not route.roles or r in route.roles)
                token = principal_token(minter, role, "own", ids)
                url, _ = fill(route, ids, real=False)
                response = await send(world, service, route.method, url, HTML, cookies={SESSION_COOKIE: token})
                check(response.status_code == 403 and "hết hiệu lực" in response.text, f"{name} cookie, no CSRF",
                      response)
                secret = world.settings[service].secret_key
                response = await send(world, service, route.method, url,
                                      {**HTML, "origin": "https://evil.example",
                                       "content-type": "application/x-www-form-urlencoded"},
                                      cookies={SESSION_COOKIE: token})
                check(response.status_code == 403, f"{name} cookie from another site", response)
                body = f"csrf_token={token_for(secret, token)}"
                world[service].cookies.clear()
                response = await world[service].request(
                    route.method, url, content=body, cookies={SESSION_COOKIE: token},
                    headers={**HTML, "origin": "https://evil.example", "content-type": "application/x-www-form-urlencoded"})
                world[service].cookies.clear()
                check(response.status_code == 403, f"{name} cookie + token from another site", response)
                cells["csrf"] += 3
    record_figure("authorization matrix", cells=cells["total"], csrf_cells=cells["csrf"],
                  server_errors=cells["server_errors"], own_objects_seen=cells["own_objects_seen"],
                  other_refused=proven_other, failures=len(failures))
    assert not failures, f"{len(failures)} of {cells['total']} cells wrong:\n" + "\n".join(failures[:60])
    assert cells["server_errors"] == 0
    # The real ids did reach the objects: the refusals above are about jurisdiction.
    assert cells["own_objects_seen"] >= 5 and proven_other >= 10, (cells, proven_other)
