"""Strict request content types and no CORS, on every service (libs/common/content_types.py).

A JSON route takes ``application/json`` (``; charset=utf-8`` at most): ``text/plain`` or no
type, which a page of another site can make a browser send without a CORS preflight, is
refused with 415 and a Vietnamese-first message, before anything is read or stored. A
form route takes URL-encoded or multipart forms only (415 otherwise, the error page for a
browser). A body-less POST passes whatever its type. No answer allows another origin.
"""
from __future__ import annotations

import json
import uuid

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from libs.common.auth import Role
from libs.common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
from libs.common.settings import SERVICES

from .conftest import (
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    Minter,
    demo_system,
    eventually,
    record_figure,
    registration,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
REFUSED_JSON = "Nội dung yêu cầu phải là JSON"
REFUSED_FORM = "Biểu mẫu phải được gửi dạng"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory):
    async with demo_system(tmp_path_factory.mktemp("content-types") / "data") as running:
        yield running


async def demo_venue_code(system) -> str:  # noqa: ANN001
    """A venue made by the provisioning demo, once the declaration service knows it."""
    from services.provisioning.models import Venue

    async with system.runtime("provisioning").database.transaction(readonly=True) as session:
        code = (await session.execute(select(Venue).where(Venue.active.is_(True)))).scalars().first().code

    async def known() -> bool:
        return (await system["declaration"].get(f"/api/venues/{code}")).status_code == 200

    await eventually(known, timeout=60, what=f"venue {code} copied to the declaration service")
    return code


def declaration_body(code: str) -> bytes:
    return json.dumps({"venue_code": code, "consent": True, "idempotency_key": uuid.uuid4().hex, "people": [{
        "full_name": "Nguyễn Văn An", "id_number": "079099012345", "birth": "01/02/1990", "gender": "male",
        "phone": "0909 123 456", "province_code": "79", "district_code": "787", "commune_code": "27664",
        "street": "12 Lương Văn Nho"}]}, ensure_ascii=False).encode()


async def post(system, service: str, url: str, body: bytes, content_type: str | None,  # noqa: ANN001
               headers: dict | None = None) -> httpx.Response:
    client = system[service]
    client.cookies.clear()
    sent = {**(headers or {}), **({"content-type": content_type} if content_type is not None else {})}
    return await client.post(url, content=body, headers=sent)


def refused(response: httpx.Response, text: str) -> bool:
    return response.status_code == 415 and text in response.text


async def test_json_routes_refuse_other_types_and_take_json(system):
    minter: Minter = system.extra["minter"]
    code = await demo_venue_code(system)
    commune = minter.headers(Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    gate = minter.headers(Role.GATE_STAFF, DEMO_COMMUNE)
    officer = minter.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT)
    username = DEMO_ACCOUNTS[0][0]
    # (service, url, headers, a valid body, the status it gets with the right type)
    routes = [
        ("intake", "/api/registrations", {}, json.dumps(registration("27664")).encode(), 201),
        ("provisioning", "/api/token", {},
         json.dumps({"username": username, "password": DEMO_PASSWORD}).encode(), 200),
        ("declaration", "/api/declarations", {}, declaration_body(code), 201),  # the hot door (fastpath.py)
        ("declaration", "/api/passes/verify", gate, b'{"code": "KB1.x"}', 200),
        ("reporting", "/api/exposure", officer, b"{}", 422),  # refused on its content, not its type
        # notification has no JSON POST route: the rule holds for any path under /api/
        ("notification", "/api/alerts", commune, b"{}", 405),
    ]
    counts_before = await stored(system)
    for service, url, headers, body, status in routes:
        for content_type in ("text/plain", None, "text/plain; charset=utf-8", FORM,
                             "multipart/form-data; boundary=x", "application/json; charset=latin-1",
                             "application/jsonx", "application/x-json"):
            response = await post(system, service, url, body, content_type, headers)
            assert refused(response, REFUSED_JSON), (service, url, content_type, response.status_code,
                                                    response.text[:200])
            assert response.json()["type"] == "/problems/unsupported-media-type"  # an RFC 9457 problem
            assert response.headers["x-content-type-options"] == "nosniff"  # the common headers too
    assert await stored(system) == counts_before, "a refused request stored something"
    for service, url, headers, body, status in routes:
        kinds = [JSON, "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"]
        for content_type in kinds if service != "declaration" or "passes" in url else kinds[:1]:
            if url == "/api/declarations":
                body = declaration_body(code)
            response = await post(system, service, url, body, content_type, headers)
            assert response.status_code == status, (service, url, content_type, response.status_code,
                                                    response.text[:300])
    for content_type in ("application/json; charset=utf-8", 'application/json; charset="UTF-8"'):
        response = await post(system, "declaration", "/api/declarations", declaration_body(code), content_type)
        assert response.status_code == 201, (content_type, response.text[:300])
    record_figure("web hardening", json_routes_checked=len(routes))


async def stored(system) -> tuple[int, int]:  # noqa: ANN001
    from services.declaration.models import Declaration
    from services.intake.models import Registration

    counts = []
    for service, model in (("intake", Registration), ("declaration", Declaration)):
        async with system.runtime(service).database.transaction(readonly=True) as session:
            counts.append((await session.execute(select(func.count()).select_from(model))).scalar_one())
    return tuple(counts)


async def test_form_routes_refuse_json_and_take_forms(system):
    code = await demo_venue_code(system)
    username = DEMO_ACCOUNTS[0][0]
    html = {"accept": "text/html"}
    forms = [
        ("intake", "/status", "reference=DK-ABC&phone=0909123456", (404,)),
        ("provisioning", "/signin", f"username={username}&password={DEMO_PASSWORD}", (303,)),
        ("declaration", f"/v/{code}", "count=1&action=add", (200,)),
        ("notification", "/support/ABCDEFGH/messages", "body=Xin+ch%C3%A0o", (303, 404)),
        ("reporting", "/exposure", "case_reference=x", (303,)),  # no session: to the sign-in page
    ]
    for service, url, body, statuses in forms:
        for content_type in (JSON, "text/plain", None):
            response = await post(system, service, url, body.encode(), content_type)
            assert refused(response, REFUSED_FORM), (service, url, content_type, response.status_code,
                                                    response.text[:200])
            # A browser gets the error page, in Vietnamese (English on request).
            page = await post(system, service, url, body.encode(), content_type, html)
            assert page.status_code == 415 and "Biểu mẫu không được hỗ trợ" in page.text, (service, url)
            assert page.headers["content-type"].startswith("text/html")
            english = await post(system, service, url + "?lang=en", body.encode(), content_type, html)
            assert english.status_code == 415 and "Unsupported form" in english.text
        response = await post(system, service, url, body.encode(), FORM, html)
        assert response.status_code in statuses, (service, url, response.status_code, response.text[:300])
        boundary = "kb" + uuid.uuid4().hex
        multipart = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                            for k, v in (pair.split("=", 1) for pair in body.split("&"))) + f"--{boundary}--\r\n"
        response = await post(system, service, url, multipart.encode(),
                              f"multipart/form-data; boundary={boundary}", html)
        assert response.status_code != 415, (service, url, "multipart", response.text[:300])


async def test_the_upload_api_takes_multipart_and_bodyless_posts_pass(system):
    """``POST /api/imports`` declares a file: it takes multipart (not JSON). A POST without a
    body (Content-Length 0, or none) is never refused for its type."""
    minter: Minter = system.extra["minter"]
    reviewer = minter.headers(Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    upload = await system["intake"].post("/api/imports", headers=reviewer,
                                         files={"file": ("danh-sach.xlsx", b"not a workbook", "application/zip")})
    assert upload.status_code == 422, upload.text[:300]  # refused for its content, not its type
    as_json = await post(system, "intake", "/api/imports", b'{"file": "x"}', JSON, reviewer)
    assert refused(as_json, REFUSED_FORM)
    city = minter.headers(Role.CITY_DIC, CITY)
    missing = uuid.uuid4()
    for service, url, headers in (("intake", f"/api/registrations/{missing}/accept", reviewer),
                                  ("provisioning", f"/api/batches/{missing}/issue", city),
                                  ("provisioning", "/signout", {"accept": "text/html"})):
        for content_type in (None, "text/plain", JSON):
            response = await post(system, service, url, b"", content_type, headers)
            assert response.status_code != 415 and response.status_code < 500, (service, url, content_type,
                                                                                  response.status_code)
            client = system[service]
            bare = await client.send(client.build_request("POST", url, headers=headers))  # no Content-Length
            assert bare.status_code != 415, (service, url)


async def test_no_answer_allows_another_origin(system):
    """No CORS: a preflight from another site, or a request naming it, gets no Access-Control-Allow-*."""
    minter: Minter = system.extra["minter"]
    token = minter.headers(Role.CITY_DIC, CITY)
    routes = {"intake": "/api/registrations", "provisioning": "/api/token", "declaration": "/api/declarations",
              "notification": "/api/alerts", "reporting": "/api/exposure"}
    checked = 0
    for service in SERVICES:
        url = routes[service]
        client = system[service]
        origin = {"origin": "https://evil.example"}
        answers = [
            await client.options(url, headers={**origin, "access-control-request-method": "POST",
                                               "access-control-request-headers": "content-type"}),
            await client.post(url, content=b"{}", headers={**origin, **token, "content-type": JSON}),
            await client.post(url, content=b"{}", headers={**origin, **token, "content-type": "text/plain"}),
            await client.get(url, headers={**origin, **token}),
        ]
        for response in answers:
            checked += 1
            allowing = [h for h in response.headers if h.lower().startswith("access-control-allow")]
            assert not allowing, (service, url, response.request.method, allowing)
    record_figure("web hardening", cors_answers_checked=checked)
