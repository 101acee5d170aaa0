"""API errors as RFC 9457 ``application/problem+json`` in the caller's language (issue 18, item 2).

Every service answers an API error with a stable ``type`` (``/problems/<kind>``), ``title``,
``status``, a localised ``detail`` and, for a refused field, ``errors`` with ``field`` and a
localised ``message``. The language is ``Accept-Language`` (Vietnamese by default, English
supported); never the two joined as "vi / en". The status codes are those of before.
"""
from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest
import pytest_asyncio

from libs.common.auth import Role

from .conftest import DEMO_DISTRICT, Minter, demo_system, registration

pytestmark = pytest.mark.asyncio(loop_scope="module")

PROBLEM = "application/problem+json"
VIETNAMESE = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹáàãéèíìóòõúùýĐ]", re.I)
EN = {"accept-language": "en-GB,en;q=0.9"}
VI = {"accept-language": "vi-VN,vi;q=0.9"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory):
    async with demo_system(tmp_path_factory.mktemp("problems") / "data") as running:
        yield running


def problem(response: httpx.Response, status: int, kind: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body = response.json()
    assert body["type"] == f"/problems/{kind}", body
    assert body["status"] == status and body["title"] and isinstance(body["detail"], str), body
    texts = [body["title"], body["detail"], *(e["message"] for e in body.get("errors", []))]
    assert not any(" / " in t for t in texts), body  # one language, not "vi / en"
    return body


def english(body: dict) -> None:
    texts = [body["title"], body["detail"], *(e["message"] for e in body.get("errors", []))]
    assert not any(VIETNAMESE.search(t) for t in texts), body


def vietnamese(body: dict) -> None:
    assert VIETNAMESE.search(body["detail"]), body
    for error in body.get("errors", []):
        assert VIETNAMESE.search(error["message"]), body


async def test_not_found_in_the_callers_language(system):
    minter: Minter = system.extra["minter"]
    city = minter.headers(Role.CITY_DIC)
    url = f"/api/registrations/{uuid.uuid4()}"
    vi = problem(await system["intake"].get(url, headers=city), 404, "not-found")
    assert vi["detail"] == "Không tìm thấy đăng ký"
    assert problem(await system["intake"].get(url, headers={**city, **VI}), 404, "not-found") == vi
    en = problem(await system["intake"].get(url, headers={**city, **EN}), 404, "not-found")
    assert en["detail"] == "Registration not found"
    english(en)


async def test_unauthenticated_and_wrong_type(system):
    vi = problem(await system["reporting"].get("/api/access-log"), 401, "unauthenticated")
    vietnamese(vi)
    english(problem(await system["reporting"].get("/api/access-log", headers=EN), 401, "unauthenticated"))
    refused = await system["intake"].post("/api/registrations", content=b"{}",
                                          headers={"content-type": "text/plain", **EN})
    english(problem(refused, 415, "unsupported-media-type"))


async def test_field_errors_name_the_field(system):
    body = registration("27664", contact_name="N\u202eguyễn")
    vi = problem(await system["intake"].post("/api/registrations", json=body), 422, "validation")
    assert [e["field"] for e in vi["errors"]] == ["contact_name"], vi
    vietnamese(vi)
    en = problem(await system["intake"].post("/api/registrations", json=body, headers=EN), 422, "validation")
    assert [e["field"] for e in en["errors"]] == ["contact_name"]
    english(en)


async def test_declaration_errors_per_field(system):
    body = {"venue_code": "NOPE", "consent": True, "idempotency_key": uuid.uuid4().hex, "people": [{
        "full_name": "", "id_number": "079099012345", "birth": "01/02/1990", "gender": "male",
        "phone": "0909 123 456", "province_code": "79", "district_code": "787", "commune_code": "27664",
        "street": "12 Lương Văn Nho"}]}
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = {"content-type": "application/json"}
    vi = problem(await system["declaration"].post("/api/declarations", content=raw, headers=headers),
                 422, "validation")
    assert "people.0.full_name" in {e["field"] for e in vi["errors"]}, vi
    vietnamese(vi)
    en = problem(await system["declaration"].post("/api/declarations", content=raw, headers={**headers, **EN}),
                 422, "validation")
    english(en)


async def test_exposure_errors_are_not_english_twice(system):
    minter: Minter = system.extra["minter"]
    officer = minter.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT)
    vi = problem(await system["reporting"].post("/api/exposure", json={"reason": "x"}, headers=officer),
                 422, "validation")
    by_field = {e["field"]: e["message"] for e in vi["errors"]}
    assert by_field["case_reference"].startswith("Nhập số hồ sơ") or VIETNAMESE.search(by_field["case_reference"])
    vietnamese(vi)
    en = problem(await system["reporting"].post("/api/exposure", json={"reason": "x"}, headers={**officer, **EN}),
                 422, "validation")
    assert {e["field"]: e["message"] for e in en["errors"]}["case_reference"].startswith("Enter the case reference")
    english(en)


async def test_the_openapi_document_describes_problems(system):
    for service in ("intake", "declaration", "reporting"):
        schema = (await system[service].get("/api/openapi.json")).json()
        problem_schema = schema["components"]["schemas"]["Problem"]
        assert {"type", "title", "status", "detail", "errors"} <= set(problem_schema["properties"])
        assert "/problems/" in json.dumps(problem_schema)


def test_a_pydantic_error_without_a_sentence_of_ours_is_not_english_in_vietnamese():
    from libs.common.problems import validation_errors

    item = {"type": "ip_v4_address", "loc": ("body", "address"), "msg": "Input is not a valid IPv4 address"}
    [vi] = validation_errors([item], "vi")
    [en] = validation_errors([item], "en")
    assert vi == {"field": "address", "message": "Giá trị này không hợp lệ.", "type": "ip_v4_address"}
    assert en["message"] == "Input is not a valid IPv4 address"
    # A message of ours in Vietnamese stays as it is.
    [ours] = validation_errors([{**item, "msg": "Số điện thoại không hợp lệ"}], "vi")
    assert ours["message"] == "Số điện thoại không hợp lệ"
