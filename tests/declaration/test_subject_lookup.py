"""The subject request console finds a person by ID number, by phone, or by both, through
the blind indexes (the numbers are stored encrypted); a phone alone also finds the members
of a family's form (their phone is the group's)."""
from __future__ import annotations

import re

from libs.common.auth import SESSION_COOKIE, Role

from .conftest import DEMO_DISTRICT, declaration, person

HTML = {"accept": "text/html"}
REQUEST = {"reference": "YC-2026-0103", "reason": "Người dân yêu cầu bản sao dữ liệu khai báo"}


async def _find(service, token: str, **given) -> tuple[int, str]:  # noqa: ANN001, ANN003
    page = await service.client.post("/subject", headers=HTML, data={"csrf_token": token, **REQUEST, **given})
    count = re.search(r'id="subject-count">(\d+)<', page.text)
    return page.status_code, count.group(1) if count else page.text


async def test_the_console_finds_a_person_by_id_number_by_phone_or_both(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    family = declaration(venue.code, person(full_name="Ngô Văn Cha", id_number="079080001111", phone="0933 444 555"),
                         person(full_name="Ngô Thị Con", id_number="079120002222", phone=None, birth="02/03/2012"))
    assert (await service.client.post("/api/declarations", json=family)).status_code == 201
    assert (await service.client.post("/api/declarations", json=declaration(venue.code))).status_code == 201
    service.client.cookies.set(SESSION_COOKIE, mint.token(Role.HEALTH_OFFICER, DEMO_DISTRICT))
    form = await service.client.get("/subject", headers=HTML)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    assert 'name="phone"' in form.text

    assert await _find(service, token, id_number="079 080 001 111") == (200, "1")
    assert await _find(service, token, phone="+84933444555") == (200, "2")  # the family's form
    assert await _find(service, token, id_number="079120002222", phone="0933.444.555") == (200, "1")
    assert await _find(service, token, id_number="079080001111", phone="0909 123 456") == (200, "0")
    status, page = await _find(service, token, phone="12")
    assert status == 422 and "Số điện thoại gồm 10 hoặc 11 chữ số" in page
    status, page = await _find(service, token)
    assert status == 422 and "hoặc số điện thoại" in page


async def test_export_and_erasure_need_the_id_number_a_shared_phone_is_not_enough(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    family = declaration(venue.code, person(full_name="Lý Văn Bố", id_number="079080003333", phone="0944 555 666"),
                         person(full_name="Lý Thị Mẹ", id_number="079085004444", phone=None))
    assert (await service.client.post("/api/declarations", json=family)).status_code == 201
    officer = {"authorization": f"Bearer {mint.token(Role.HEALTH_OFFICER, DEMO_DISTRICT)}"}
    by_phone = {**REQUEST, "phone": "0944555666"}
    assert (await service.client.post("/api/subject/search", headers=officer, json=by_phone)).json()["total"] == 2
    for path, extra in (("/api/subject/export", {}), ("/api/subject/erase", {"confirm": True})):
        refused = await service.client.post(path, headers=officer, json={**by_phone, **extra})
        assert refused.status_code == 422, (path, refused.text)
        assert "id_number" in refused.text
    # Nothing was erased: both members are still found; with the ID number, only the asker goes.
    assert (await service.client.post("/api/subject/search", headers=officer, json=by_phone)).json()["total"] == 2
    erased = await service.client.post("/api/subject/erase", headers=officer,
                                       json={**REQUEST, "id_number": "079080003333", "confirm": True})
    assert erased.status_code == 200 and erased.json()["erased"] == 1
    left = (await service.client.post("/api/subject/search", headers=officer, json=by_phone)).json()
    assert [d["full_name"] for d in left["declarations"]] == ["Lý Thị Mẹ"]
