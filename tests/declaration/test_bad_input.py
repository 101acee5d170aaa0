"""Every bad input of the declaration, through the JSON API and the HTML form: a clear message
in Vietnamese (English with ?lang=en), the right status, nothing stored, never a 500."""
from __future__ import annotations

import re
import time
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from libs.common.events.provisioning import VenueCodeRotated, VenueCodeRotatedData, VenueDisabled, VenueDisabledData
from services.declaration.models import Declaration
from services.declaration.web import RESULT_COOKIE, RESULT_SECONDS, result_token

from .conftest import declaration, eventually, person

TOMORROW = (date.today() + timedelta(days=2)).strftime("%d/%m/%Y")


async def _stored(service) -> int:  # noqa: ANN001
    async with service.runtime.database.transaction(readonly=True) as session:
        return (await session.execute(select(func.count()).select_from(Declaration))).scalar_one()


def _messages(response) -> dict[str, str]:  # noqa: ANN001
    return {item["field"]: item["message"] for item in response.json()["errors"]}  # RFC 9457 field errors


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"full_name": ""}, "people.0.full_name", "Vui lòng điền thông tin này."),
    ({"full_name": "An 2"}, "people.0.full_name", "Họ và tên chỉ gồm chữ cái"),
    # The text policy (libs/common/text.py): each refusal names its field.
    ({"full_name": "Nguyễn\u0000An"}, "people.0.full_name", "Họ và tên có ký tự điều khiển"),
    ({"full_name": "Nguyễn\u0085An"}, "people.0.full_name", "Họ và tên có ký tự điều khiển"),
    ({"full_name": "Nguyễn An\u0085"}, "people.0.full_name", "Họ và tên có ký tự điều khiển"),
    ({"full_name": "\u202enA nễyugN"}, "people.0.full_name", "Họ và tên có ký tự ẩn"),
    ({"full_name": "Nguyễn \u2066An\u2069"}, "people.0.full_name", "Họ và tên có ký tự ẩn"),
    ({"full_name": "𝕳𝖊𝖑𝖑𝖔"}, "people.0.full_name", "Họ và tên được viết bằng chữ trang trí"),
    ({"full_name": "An'; ( )"}, "people.0.full_name", "Họ và tên chỉ gồm chữ cái"),
    ({"full_name": "Nguyễn\ue000An"}, "people.0.full_name", "Họ và tên có ký tự không thuộc bảng chữ cái"),
    ({"full_name": "Nguyễn\u0378An"}, "people.0.full_name", "Họ và tên có ký tự không thuộc bảng chữ cái"),
    ({"nationality": "Atlantis"}, "people.0.nationality", "Quốc tịch không phải một quốc gia"),
    ({"street": "12 Lương\u0000Văn Nho"}, "people.0.street", "Số nhà, đường có ký tự điều khiển"),
    ({"symptom_other": "ho \u202e"}, "people.0.symptom_other", "Dấu hiệu khác có ký tự ẩn"),
    ({"phone": "٠٩٠٩١٢٣٤٥٦"}, "people.0.phone", "Nhập số điện thoại 10 hoặc 11 chữ số"),
    ({"id_number": "٠٧٩٠٩٩٠١٢٣٤٥"}, "people.0.id_number", "Số hộ chiếu gồm 6 đến 9"),
    ({"birth": "31/02/1990"}, "people.0.birth", "Ngày này không có thật"),
    ({"birth": "29/02/2021"}, "people.0.birth", "Ngày này không có thật"),
    ({"birth": "12/13/1990"}, "people.0.birth", "Ngày này không có thật"),
    ({"birth": TOMORROW}, "people.0.birth", "Ngày sinh không thể ở tương lai"),
    ({"birth": "1899"}, "people.0.birth", "Năm sinh phải từ 1900"),
    ({"birth": "ngày 1 tháng 2"}, "people.0.birth", "Ghi ngày sinh theo dạng"),
    ({"id_type": "cccd", "id_number": "07909901234"}, "people.0.id_number", "Số CCCD phải gồm đúng 12 chữ số"),
    ({"id_type": "cmnd", "id_number": "02345678"}, "people.0.id_number", "Số CMND phải gồm đúng 9 chữ số"),
    ({"id_type": "passport", "id_number": "C12#4567"}, "people.0.id_number", "Số hộ chiếu gồm 6 đến 9"),
    ({"id_number": "0790990123"}, "people.0.id_number", "12 chữ số (CCCD) hoặc 9 chữ số (CMND)"),
    ({"id_number": None}, "people.0.id_number", "Vui lòng nhập số CCCD, CMND hoặc hộ chiếu"),
    ({"phone": "12345"}, "people.0.phone", "Nhập số điện thoại 10 hoặc 11 chữ số"),
    ({"phone": None}, "people.0.phone", "Nhập số điện thoại để cơ quan y tế liên lạc"),
    ({"gender": "x"}, "people.0.gender", "Vui lòng chọn một trong các lựa chọn"),
    ({"district_code": "760"}, "people.0.commune_code", "Chọn tỉnh/thành phố, rồi quận/huyện, rồi phường/xã"),
    ({"commune_code": "abc"}, "people.0.commune_code", "Vui lòng chọn phường/xã"),
    ({"symptoms": ["hiccups"]}, "people.0.symptoms", "Chỉ chọn trong các câu trả lời có sẵn"),
    ({"vaccine_doses": 9}, "people.0.vaccine_doses", "Số quá lớn"),
    ({"street": "x" * 201}, "people.0.street", "tối đa 200 ký tự"),
])
async def test_a_wrong_field_is_named_with_a_clear_message(declaration_app, change, field, message):
    service = declaration_app
    body = declaration(service.venues["main"].code, person(**change))
    body["people"][0] = {k: v for k, v in body["people"][0].items() if v is not None}
    response = await service.client.post("/api/declarations", json=body)
    assert response.status_code == 422, response.text
    messages = _messages(response)
    assert message in messages.get(field, ""), messages
    english = await service.client.post("/api/declarations", json=body, headers={"accept-language": "en"})
    assert english.status_code == 422 and all(item["message"] for item in english.json()["errors"])
    assert await _stored(service) == 0


async def test_missing_fields_consent_group_size_and_keys(declaration_app):
    service = declaration_app
    code = service.venues["main"].code
    client = service.client
    missing = await client.post("/api/declarations", json={"venue_code": code, "people": [{}], "consent": True})
    assert missing.status_code == 422
    assert {"people.0.full_name", "people.0.birth", "people.0.gender", "people.0.street"} <= set(_messages(missing))
    refused = await client.post("/api/declarations", json=declaration(code, consent=False))
    assert "đánh dấu ô xác nhận" in _messages(refused)["consent"]
    crowd = await client.post("/api/declarations", json=declaration(code, *[person()] * 11))
    assert crowd.status_code == 422 and "tối đa 10 người" in _messages(crowd)["people"]
    nobody = await client.post("/api/declarations", json=declaration(code, people=[]))
    assert nobody.status_code == 422
    key = await client.post("/api/declarations", json=declaration(code, key="a b"))
    assert "Biểu mẫu đã hết hiệu lực" in _messages(key)["idempotency_key"]
    extra = await client.post("/api/declarations", json=declaration(code, admin=True))
    assert extra.status_code == 422 and "không thuộc biểu mẫu" in _messages(extra)["admin"]
    for raw in (b"{not json", b"\xff\xfe", b"[]", b""):
        response = await client.post("/api/declarations", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422, raw
    assert await _stored(service) == 0


async def test_unknown_disabled_and_replaced_venue_codes(declaration_app):
    service = declaration_app
    client = service.client
    unknown = await client.post("/api/declarations", json=declaration("NOSUCHCODE"))
    assert unknown.status_code == 404 and "Mã địa điểm không tồn tại" in _messages(unknown)["venue_code"]
    malformed = await client.post("/api/declarations", json=declaration("<script>"))
    assert malformed.status_code == 422 and "quét lại mã QR" in _messages(malformed)["venue_code"]

    main, side = service.venues["main"], service.venues["side"]
    await service.announce(VenueDisabled(producer="provisioning", jurisdiction=main.commune_path,
                                         data=VenueDisabledData(**main.state(active=False), reason="đóng cửa")))
    new_code = "NEW" + side.code[3:]
    await service.announce(VenueCodeRotated(producer="provisioning", jurisdiction=side.commune_path,
                                            data=VenueCodeRotatedData(**dict(side.state(), code=new_code),
                                                                      old_code=side.code)))

    async def applied():
        closed = await client.get(f"/api/venues/{main.code}")
        moved = await client.get(f"/api/venues/{new_code}")
        return closed.json().get("active") is False and moved.status_code == 200

    await eventually(applied, what="venue events applied")
    disabled = await client.post("/api/declarations", json=declaration(main.code))
    assert disabled.status_code == 410 and "ngừng nhận khai báo" in _messages(disabled)["venue_code"]
    old = await client.post("/api/declarations", json=declaration(side.code))
    assert old.status_code == 410 and "đã được thay bằng mã mới" in _messages(old)["venue_code"]
    assert (await client.post("/api/declarations", json=declaration(new_code))).status_code == 201
    # The pages say the same to a visitor who scans an old poster.
    page = await client.get(f"/v/{side.code}", headers={"accept": "text/html"})
    assert page.status_code == 410 and "Mã QR này đã cũ" in page.text
    page = await client.get(f"/v/{main.code}", headers={"accept": "text/html"})
    assert page.status_code == 410 and "Địa điểm này không nhận khai báo" in page.text
    page = await client.get("/v/NOSUCHCODE", headers={"accept": "text/html"})
    assert page.status_code == 404 and "Mã địa điểm không tồn tại" in page.text


async def test_oversized_bodies_are_refused_before_reading_them_all(declaration_app):
    service = declaration_app
    code = service.venues["main"].code
    limit = service.settings.max_body_bytes
    big = declaration(code, person(street="x" * 150))
    big["people"] = big["people"] * 300  # a body far over the limit
    response = await service.client.post("/api/declarations", json=big)
    assert response.status_code == 413 and "Biểu mẫu quá lớn" in response.json()["errors"][0]["message"]

    async def chunks():  # no Content-Length: counted while it streams
        for _ in range(limit // 1000 + 5):
            yield b" " * 1000

    streamed = await service.client.post("/api/declarations", content=chunks(),
                                         headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    page = await service.client.post(f"/v/{code}", content=b"p0.street=" + b"x" * (limit + 10),
                                     headers={"content-type": "application/x-www-form-urlencoded",
                                              "accept": "text/html"})
    assert page.status_code == 413 and "Biểu mẫu quá lớn" in page.text
    assert await _stored(service) == 0


FORM = {"count": "1", "p0.full_name": "Nguyễn Văn An", "p0.id_type": "cccd", "p0.id_number": "079099012345",
        "p0.birth": "01/02/1990", "p0.gender": "male", "p0.nationality": "Việt Nam", "p0.phone": "0909123456",
        "p0.province_code": "79", "p0.district_code": "787", "p0.commune_code": "27664",
        "p0.street": "12 Lương Văn Nho", "consent": "1", "action": "submit"}


def _key(page: str) -> str:
    return re.search(r'name="key" value="([^"]+)"', page).group(1)


def _field_errors(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", m).replace("Lỗi:", "").replace("Error:", "").strip()
            for m in re.findall(r'<p class="field__error"[^>]*>(.*?)</p>', page, re.S)]


async def test_the_form_shows_every_mistake_in_vietnamese_and_keeps_what_was_typed(declaration_app):
    service = declaration_app
    code = service.venues["main"].code
    client = service.client
    html = {"accept": "text/html"}
    page = await client.get(f"/v/{code}", headers=html)
    bad = dict(FORM, key=_key(page.text), **{"p0.birth": "31/02/1990", "p0.id_number": "12345", "p0.phone": "",
                                              "consent": ""})
    response = await client.post(f"/v/{code}", data=bad, headers=html)
    assert response.status_code == 422
    errors = _field_errors(response.text)
    assert "Ngày này không có thật: kiểm tra lại ngày và tháng." in errors
    assert "Số CCCD phải gồm đúng 12 chữ số." in errors
    assert "Nhập số điện thoại để cơ quan y tế liên lạc khi cần." in errors
    assert "Vui lòng đánh dấu ô xác nhận lời khai và đồng ý sử dụng dữ liệu." in errors
    assert 'class="error-summary"' in response.text and 'value="Nguyễn Văn An"' in response.text
    english = await client.post(f"/v/{code}?lang=en", data=bad, headers=html)
    assert "This date does not exist: check the day and the month." in _field_errors(english.text)
    assert await _stored(service) == 0


async def test_a_double_submit_of_the_form_shows_the_first_result(declaration_app):
    service = declaration_app
    code = service.venues["main"].code
    client = service.client
    html = {"accept": "text/html"}
    form = dict(FORM, key=_key((await client.get(f"/v/{code}", headers=html)).text))
    first = await client.post(f"/v/{code}", data=form, headers=html)
    second = await client.post(f"/v/{code}", data=form, headers=html)
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"] + "?dup=1"
    result = await client.get(second.headers["location"], headers=html)
    assert "Tờ khai này đã được gửi trước đó" in result.text
    assert await _stored(service) == 1
    # A result page needs the capability its form set on this device: the link alone, a forged
    # or an expired capability, or another result's, opens nothing.
    page = first.headers["location"]
    submission = page.rsplit("/", 1)[1]
    secret = service.settings.secret_key
    client.cookies.clear()
    assert (await client.get(page, headers=html)).status_code == 404
    for capability in ("0" * 24, f"{int(time.time()) + 600}.{'0' * 32}",
                       result_token(secret, submission, now=time.time() - RESULT_SECONDS - 1),
                       result_token(secret, uuid.uuid4())):
        assert (await client.get(page, headers={**html, "cookie": f"{RESULT_COOKIE}={capability}"})).status_code == 404
    valid = result_token(secret, submission)
    assert (await client.get(page, headers={**html, "cookie": f"{RESULT_COOKIE}={valid}"})).status_code == 200


async def test_nothing_bad_ever_answers_500(declaration_app):
    service = declaration_app
    code = service.venues["main"].code
    client = service.client
    odd = [
        ("post", "/api/declarations", {"json": {"venue_code": code, "people": "everyone", "consent": "yes"}}),
        ("post", "/api/declarations", {"json": declaration(code, person(birth=19900102))}),
        ("post", "/api/declarations", {"json": declaration(code, person(symptoms="fever"))}),
        ("post", f"/v/{code}", {"content": b"p0.full_name=%FF%FE&count=abc&action=remove:x",
                                "headers": {"content-type": "application/x-www-form-urlencoded"}}),
        ("post", f"/v/{code}", {"content": b"\xff\xfe\x00", "headers": {"content-type": "text/plain"}}),
        ("post", f"/v/{code}", {"data": {"count": "999", "action": "add"}}),
        ("get", "/v/%00%00", {}),
        ("get", "/v/" + "A" * 300, {}),
        ("get", f"/v/{code}/done/not-a-uuid", {}),
    ]
    for method, url, options in odd:
        response = await getattr(client, method)(url, **options)
        assert response.status_code < 500, (url, response.status_code, response.text[:300])
    assert await _stored(service) == 0
