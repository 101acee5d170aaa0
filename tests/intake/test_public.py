"""The district's public page (circular 1.1), the self-service form, the unit's status page
behind an unguessable link, and the campaign deadline."""
from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest

from .conftest import FAST, build_settings, registration, run_services

FORM = {"unit_name": "Trường Mầm non Sơn Ca", "unit_type": "school", "commune": "27667", "address": "5 Đường Rừng Sác",
        "tax_code": "", "contact_name": "Lê Thị Hoa", "contact_position": "Hiệu trưởng",
        "contact_phone": "+84 909 555 666", "contact_email": "", "venue_count": "2", "notes": ""}


@pytest.fixture
async def public(keys):
    from .test_mail import free_port

    settings = build_settings("intake", keys, campaign_deadline=date(2021, 6, 30), mail_domain="khaibao.test",
                              smtp_port=free_port(), **FAST)
    async with run_services({"intake": settings}) as system:
        yield system["intake"]


def text_of(page) -> str:  # noqa: ANN001
    return html.unescape(re.sub(r"<[^>]+>", " ", page.text))


async def test_the_district_page_says_who_registers_where_and_how(public):
    page = await public.get("/d/787")
    assert page.status_code == 200
    text = text_of(page)
    for expected in ("Khai báo y tế điện tử: đăng ký đơn vị tham gia tại Huyện Cần Giờ", "Cơ quan nhà nước", "Ban, ngành cấp huyện",
                     "Trường học", "Chợ", "Cửa hàng cung cấp dịch vụ thiết yếu",
                     "Đã được Trung tâm Y tế huyện lập danh sách và cấp mã QR", "Đã sử dụng ứng dụng NCOVI",
                     "Hạn đăng ký: 30/06/2021", "vẫn nhận đăng ký và đánh dấu trễ hạn",
                     "Phòng Văn hóa và Thông tin huyện Cần Giờ", "028 3874 0001", "UBND xã Bình Khánh",
                     "danhsach.787@khaibao.test", "qua e-mail nếu đơn vị có khai", "Kênh hỗ trợ",
                     "Trung tâm Y tế huyện Cần Giờ"):
        assert expected in text, expected
    assert 'href="/d/787/register"' in page.text and 'href="/d/787/mau-danh-sach.xlsx"' in page.text
    assert "<script" not in page.text and "style=" not in page.text
    english = text_of(await public.get("/d/787?lang=en"))
    assert "Electronic health declaration: unit registration in Huyện Cần Giờ" in english
    assert "Already uses the NCOVI app" in english
    # A district without contacts in the file still has its page, named from the tree.
    public.cookies.clear()
    other = text_of(await public.get("/d/760"))
    assert "danhsach.760@khaibao.test" in other
    assert "Phòng Văn hóa và Thông tin Quận 1" in other and "UBND phường Bến Nghé" in other
    for missing in ("/d/99999", "/d/27664", "/d/abc", "/d/79"):
        assert (await public.get(missing, headers={"accept": "text/html"})).status_code == 404
    index = await public.get("/d")
    assert index.status_code == 200 and 'href="/d/787"' in index.text and index.text.count('href="/d/') == 22


async def test_the_form_explains_errors_and_keeps_what_was_typed(public):
    form = await public.get("/d/787/register?commune=27667")
    assert form.status_code == 200
    assert form.text.count("<option value=\"276") == 7 and '<option value="27667" selected>' in form.text
    bad = {**FORM, "unit_name": "", "contact_phone": "123", "contact_email": "khong@", "commune": "26740",
           "venue_count": "0"}
    page = await public.post("/d/787/register", data=bad)
    assert page.status_code == 422
    text = text_of(page)
    for message in ("Chưa điền Tên đơn vị", "Số điện thoại không hợp lệ", "E-mail không hợp lệ",
                    "Phường/xã không thuộc Huyện Cần Giờ", "Số địa điểm phải là số nguyên từ 1 đến 500"):
        assert message in text, message
    assert 'value="5 Đường Rừng Sác"' in page.text and 'href="#f-contact_phone"' in page.text
    assert 'aria-invalid="true"' in page.text


async def test_a_registration_gets_a_private_status_page(public):
    response = await public.post("/d/787/register", data=FORM)
    assert response.status_code == 303
    location = response.headers["location"]
    match = re.fullmatch(r"/status/(DK\d{6}-[0-9A-Z]{6})/([A-Za-z0-9_-]{22})\?done=registered", location)
    assert match, location
    reference, token = match.groups()
    page = await public.get(location)
    assert page.status_code == 200
    text = text_of(page)
    assert reference in text and "Trường Mầm non Sơn Ca" in text and "Xã Bình Khánh" in text
    assert "Đăng ký đã được gửi" in text and "Đang chờ UBND phường/xã xem xét" in text
    assert "trễ hạn" in text   # the 2021 deadline has passed: taken and marked late
    assert "0909555666" not in page.text and "Lê Thị Hoa" not in page.text   # no contact details
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    # Without the token, or with another, nothing is found: references cannot be enumerated.
    for wrong in (f"/status/{reference}/{'A' * 22}", f"/status/{reference}/{token[:-1]}",
                  f"/status/{reference[:-1]}{'Y' if reference.endswith('X') else 'X'}/{token}", f"/status/{reference}", "/status/DK000000-AAAAAA/x"):
        found = await public.get(wrong, headers={"accept": "text/html"})
        assert found.status_code in (404, 405), wrong
        assert "Sơn Ca" not in found.text
    api = await public.get(f"/api/status/{reference}/{token}")
    assert api.json()["stage"] == "submitted" and api.json()["late"] is True
    assert (await public.get(f"/api/status/{reference}/{'B' * 22}")).status_code == 404
    # A unit that lost its link finds it with the reference and its phone number.
    found = await public.post("/status", data={"reference": reference.lower(), "phone": "0909 555 666"})
    assert found.status_code == 303 and found.headers["location"] == f"/status/{reference}/{token}"
    wrong = await public.post("/status", data={"reference": reference, "phone": "0909555667"})
    assert wrong.status_code == 404 and "Không có đăng ký nào khớp" in wrong.text


async def test_the_deadline_marks_late_registrations(keys):
    today = date.today()
    for deadline, late in ((today + timedelta(days=1), False), (today - timedelta(days=1), True), (None, False)):
        settings = build_settings("intake", keys, campaign_deadline=deadline, database_url=(
            f"sqlite+aiosqlite:///{keys.data_dir / f'late-{deadline}.db'}"), **FAST)
        async with run_services({"intake": settings}) as system:
            created = await system["intake"].post("/api/registrations", json=registration())
            assert created.json()["late"] is late, deadline


async def test_the_template_download(public):
    response = await public.get("/d/787/mau-danh-sach.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert 'filename="mau-danh-sach-787.xlsx"' in response.headers["content-disposition"]
    assert response.content.startswith(b"PK")


async def test_without_the_mail_receiver_no_address_is_given(keys):
    async with run_services({"intake": build_settings("intake", keys, **FAST)}) as system:
        text = text_of(await system["intake"].get("/d/787"))
    assert "danhsach." not in text and "gửi cho đầu mối tiếp nhận" in text
