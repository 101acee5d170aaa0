"""The gate console: who may use it, assisted declarations from an ID card QR, verifying
personal QR codes (valid, expired, forged, red), counting entries, raising a case.

The server-side paths, as a gate phone without JavaScript uses them (the browser tests
cover the in-page verification with WebCrypto).
"""
from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from sqlalchemy import select

from libs.common import sealed
from libs.common.auth import SESSION_COOKIE, Role
from libs.common.events.declaration import person_context
from services.declaration.models import Declaration, GateEntry, SuspectedCase
from services.declaration.web import today_bounds

from .conftest import DEMO_COMMUNE, UNIT_A, UNIT_B, declaration, person, read_events

HTML = {"accept": "text/html"}
CCCD = ("079185012345|023456789|Trần Thị Hoa|15081985|Nữ|Tổ 5, Ấp Miễu Ba, Thị trấn Cần Thạnh, Huyện Cần Giờ, "
        "Thành phố Hồ Chí Minh|20062021")
CCCD_SIX = "079185012345|Trần Thị Hoa|15/08/1985|Nữ|Số 1 Lý Tự Trọng, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh|20/06/2021"
QR1405 = "079185012345|Trần Thị Hoa|1985-08-15|0|QID123|EXT"


def sign_in(service, mint, role=Role.GATE_STAFF, unit=UNIT_A, jurisdiction=DEMO_COMMUNE) -> str:  # noqa: ANN001
    token = mint.token(role, jurisdiction, unit_id=str(unit) if unit else None)
    service.client.cookies.set(SESSION_COOKIE, token)
    return token


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def values(page: str) -> dict[str, str]:
    """The form's current values as a browser would send them (inputs, checked boxes, selects)."""
    found: dict[str, str] = {}
    for tag in re.findall(r"<input\b[^>]*>", page, re.S):
        attrs = dict(re.findall(r'([a-z_-]+)="([^"]*)"', tag))
        if "name" not in attrs or (attrs.get("type") in ("checkbox", "radio") and " checked" not in tag):
            continue
        found.setdefault(attrs["name"], attrs.get("value", ""))
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        found.setdefault(name, chosen.group(1) if chosen else "")
    return {k: v.replace("&#39;", "'").replace("&amp;", "&") for k, v in found.items() if not k.startswith("p99.")}


async def gate_page(service, venue) -> str:  # noqa: ANN001
    response = await service.client.get(f"/gate/{venue.venue_id}", headers=HTML)
    assert response.status_code == 200, response.text[:500]
    return response.text


async def entries(service) -> list[GateEntry]:  # noqa: ANN001
    async with service.runtime.database.transaction(readonly=True) as session:
        return list((await session.execute(select(GateEntry))).scalars())


async def test_only_the_units_gate_staff_reach_its_gate(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    anonymous = await service.client.get(f"/gate/{venue.venue_id}", headers=HTML)
    assert anonymous.status_code == 303 and "/signin" in anonymous.headers["location"]
    sign_in(service, mint, Role.COMMUNE_FOCAL, unit=None)
    assert (await service.client.get(f"/gate/{venue.venue_id}", headers=HTML)).status_code == 403
    sign_in(service, mint, unit=UNIT_B)
    assert (await service.client.get(f"/gate/{venue.venue_id}", headers=HTML)).status_code == 403
    assert (await service.client.get(f"/gate/{service.venues['other'].venue_id}", headers=HTML)).status_code == 403
    sign_in(service, mint)
    page = await gate_page(service, venue)
    assert "Hôm nay tại cổng này" in page and "Quét mã" in page
    home = await service.client.get("/gate", headers=HTML)
    assert home.status_code == 200 and "Cổng chính" in home.text and "Cổng phụ" in home.text
    # A unit administrator may use the gate too.
    sign_in(service, mint, Role.UNIT_ADMIN)
    assert (await service.client.get(f"/gate/{venue.venue_id}", headers=HTML)).status_code == 200


@pytest.mark.parametrize("scanned", [CCCD, CCCD_SIX, QR1405], ids=["cccd-7-fields", "cccd-6-fields", "qr-1405"])
async def test_an_assisted_declaration_from_a_scanned_id(declaration_app, mint, scanned):
    service = declaration_app
    venue = service.venues["main"]
    sign_in(service, mint)
    token = csrf(await gate_page(service, venue))
    form = await service.client.post(f"/gate/{venue.venue_id}/scan", data={"code": scanned, "csrf_token": token},
                                     headers=HTML)
    assert form.status_code == 200
    assert 'value="Trần Thị Hoa"' in form.text and 'value="15/08/1985"' in form.text
    assert 'value="079185012345"' in form.text
    prefilled = values(form.text)
    if scanned is CCCD:
        # The permanent address is matched to the pickers; the rest stays as the street.
        assert (prefilled["p0.district_code"], prefilled["p0.commune_code"]) == ("787", "27664")
        assert prefilled["p0.street"] == "Tổ 5, Ấp Miễu Ba" and prefilled["p0.gender"] == "female"
        assert "Đã điền từ căn cước gắn chip" in form.text
    if scanned is CCCD_SIX:
        assert (prefilled["p0.district_code"], prefilled["p0.commune_code"]) == ("760", "26740")
    if scanned is QR1405:
        assert "Đã điền từ mã QR cá nhân quốc gia" in form.text
        prefilled.update({"p0.gender": "female", "p0.district_code": "787", "p0.commune_code": "27664",
                          "p0.street": "Ấp Miễu Ba"})
    prefilled.update({"p0.phone": "0912 345 678", "consent": "1", "action": "submit"})
    prefilled["p0.symptoms"] = "fatigue"
    result = await service.client.post(f"/gate/{venue.venue_id}/declare", data=prefilled, headers=HTML)
    assert result.status_code == 200, result.text[:2000]
    assert "Đã nhận tờ khai" in result.text and "VÀNG" in result.text and "Đã ghi nhận lượt vào: 1." in result.text
    async with service.runtime.database.transaction(readonly=True) as session:
        [row] = (await session.execute(select(Declaration))).scalars().all()
    assert (row.channel, row.full_name, row.id_number, row.gender) == ("gate", "Trần Thị Hoa", "079185012345", "female")
    assert row.declared_by is not None and str(row.birth_date) == "1985-08-15"
    assert [e.declaration_id for e in await entries(service)] == [row.id]


async def test_an_unreadable_scan_says_so(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    sign_in(service, mint)
    token = csrf(await gate_page(service, venue))
    for junk in ("hello", "a|b|c|d|e|f|g|h", "https://example.vn/x"):
        page = await service.client.post(f"/gate/{venue.venue_id}/scan", data={"code": junk, "csrf_token": token},
                                         headers=HTML)
        assert page.status_code == 422 and "KHÔNG NHẬN RA" in page.text


async def test_a_card_read_in_part_says_what_is_wrong_and_offers_the_form_with_the_rest(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    sign_in(service, mint)
    token = csrf(await gate_page(service, venue))
    eleven = CCCD.replace("079185012345", "07918501234")
    page = await service.client.post(f"/gate/{venue.venue_id}/scan", data={"code": eleven, "csrf_token": token},
                                     headers=HTML)
    assert page.status_code == 422 and signal(page.text) == "partial"
    box = page.text.split('id="signal-box"', 1)[1].split("<template", 1)[0]
    assert "KHÔNG NHẬN RA" not in box and "CĂN CƯỚC ĐỌC ĐƯỢC MỘT PHẦN" in box
    assert "Số CCCD đọc được có 11 chữ số, trong khi số CCCD phải có đúng 12 chữ số." in page.text
    assert "/gate/" in page.text and "?code=" not in page.text  # the card's text is posted back, never in a URL
    form = await service.client.post(f"/gate/{venue.venue_id}/scan", headers=HTML,
                                     data={"code": eleven, "assist": "1", "csrf_token": token})
    assert form.status_code == 200
    prefilled = values(form.text)
    assert (prefilled["p0.full_name"], prefilled["p0.birth"], prefilled["p0.id_number"]) == (
        "Trần Thị Hoa", "15/08/1985", "")  # the failed field is never prefilled
    assert "Căn cước chỉ đọc được một phần" in form.text and "có 11 chữ số" in form.text
    impossible = CCCD.replace("15081985", "31021990")
    page = await service.client.post(f"/gate/{venue.venue_id}/scan", data={"code": impossible, "csrf_token": token},
                                     headers=HTML)
    assert page.status_code == 422 and "Ngày sinh 31/02/1990 không có thật." in page.text
    # The name lost from the seven fields: the form says a field is missing and asks for the name.
    lost = CCCD.replace("|Trần Thị Hoa|", "|")
    form = await service.client.post(f"/gate/{venue.venue_id}/scan", headers=HTML,
                                     data={"code": lost, "assist": "1", "csrf_token": token})
    notice = form.text.split('id="read-in-part"', 1)[1].split("</div>", 1)[0]
    assert "Mã trên căn cước có 6 trường thay vì 7: thiếu một trường." in notice
    assert values(form.text)["p0.full_name"] == "" and "Thiếu họ tên." in form.text
    assert values(form.text)["p0.id_number"] == "079185012345"


def signal(page: str) -> str:
    return re.search(r'data-outcome="([a-z]+)"', page.split('id="signal-box"', 1)[1]).group(1)


async def test_verifying_valid_expired_forged_and_red_passes(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    keys = service.runtime.extras["declaration"].keys
    green = (await service.client.post("/api/declarations", json=declaration(venue.code))).json()["declarations"][0]
    red = (await service.client.post("/api/declarations", json=declaration(
        venue.code, person(exposures=["close_contact"])))).json()["declarations"][0]
    expired = keys.issue(uuid.UUID(green["id"]), "green", int(time.time()) - 60)
    forged_colour = green["qr"].replace(".G.", ".Y.")
    unknown_key = "KB1.ABCDEF" + green["qr"][10:]
    sign_in(service, mint)
    token = csrf(await gate_page(service, venue))

    async def scan(text: str) -> str:
        page = await service.client.post(f"/gate/{venue.venue_id}/scan", data={"code": text, "csrf_token": token},
                                         headers=HTML)
        assert page.status_code == 200
        return page.text

    page = await scan(green["qr"].lower())  # a scanner in caps-lock types lower case: still valid
    assert signal(page) == "valid" and "HỢP LỆ" in page
    assert signal(await scan(expired)) == "expired"
    assert signal(await scan(forged_colour)) == "forged"
    assert signal(await scan(unknown_key)) == "forged"
    assert signal(await scan(green["qr"][:-4] + "0000")) == "forged"
    page = await scan(red["qr"])
    assert signal(page) == "red" and "ĐỎ · KHÔNG CHO VÀO" in page and f"?declaration={red['id']}" in page
    # Only the valid pass counted an entry.
    assert [str(e.declaration_id) for e in await entries(service)] == [green["id"]]
    # The fallback API of the gate page says the same.
    for text, outcome in ((green["qr"], "valid"), (expired, "expired"), (forged_colour, "forged"), (red["qr"], "red")):
        # as gate.js sends it: the session cookie and the page's CSRF token in a header
        answer = await service.client.post("/api/passes/verify", json={"code": text}, headers={"x-csrf-token": token})
        assert answer.status_code == 200 and answer.json()["outcome"] == outcome
    service.client.cookies.clear()
    assert (await service.client.post("/api/passes/verify", json={"code": green["qr"]})).status_code == 401


async def test_forms_without_the_csrf_token_are_refused(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    sign_in(service, mint)
    await gate_page(service, venue)
    for path, data in ((f"/gate/{venue.venue_id}/entries", {"nonce": str(uuid.uuid4())}),
                       (f"/gate/{venue.venue_id}/case", {"full_name": "Lê Văn Tám", "note": "sốt"}),
                       (f"/gate/{venue.venue_id}/scan", {"code": CCCD})):
        response = await service.client.post(path, data=data, headers=HTML)
        assert response.status_code in (400, 403), (path, response.status_code)
        assert "Trang đã hết hiệu lực" in response.text
    assert await entries(service) == []


async def test_counting_entries_is_idempotent_per_scan(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    sign_in(service, mint)
    token = csrf(await gate_page(service, venue))
    nonce = str(uuid.uuid4())
    for _ in range(2):
        response = await service.client.post(f"/gate/{venue.venue_id}/entries",
                                             data={"nonce": nonce, "csrf_token": token}, headers=HTML)
        assert response.status_code == 303 and response.headers["location"].endswith("?done=entry")
    page = await gate_page(service, venue)
    assert re.search(r'id="count-entries">1<', page) and "Đã ghi nhận lượt vào." not in page
    # Offline scans uploaded later, twice: still counted once each. The earlier scan stays
    # within today in the city, so the count holds in the minutes after local midnight too.
    scanned = max(time.time() - 600, today_bounds()[0].timestamp())
    upload = {"venue_id": str(venue.venue_id), "entries": [
        {"nonce": str(uuid.uuid4()), "result": "green", "at": scanned},
        {"nonce": str(uuid.uuid4()), "result": "manual"}]}
    first = await service.client.post("/api/gate/entries", json=upload, headers={"x-csrf-token": token})
    again = await service.client.post("/api/gate/entries", json=upload, headers={"x-csrf-token": token})
    assert first.json()["entries"] == again.json()["entries"] == 3
    other = dict(upload, venue_id=str(service.venues["other"].venue_id))
    assert (await service.client.post("/api/gate/entries", json=other, headers={"x-csrf-token": token})).status_code == 403
    bad = dict(upload, entries=[{"nonce": "x", "result": "green"}])
    assert (await service.client.post("/api/gate/entries", json=bad, headers={"x-csrf-token": token})).status_code == 422


async def test_raising_a_suspected_case_by_hand(declaration_app, mint):
    service = declaration_app
    venue = service.venues["main"]
    declared = (await service.client.post("/api/declarations", json=declaration(venue.code))).json()
    sign_in(service, mint)
    token = csrf((await service.client.get(f"/gate/{venue.venue_id}/case", headers=HTML)).text)
    empty = await service.client.post(f"/gate/{venue.venue_id}/case", data={"csrf_token": token, "phone": "12"},
                                      headers=HTML)
    assert empty.status_code == 422
    assert "Ghi đầy đủ họ tên" in empty.text and "Nhập số điện thoại 10 hoặc 11 chữ số" in empty.text
    assert "Đánh dấu các dấu hiệu đã thấy" in empty.text
    report = {"csrf_token": token, "full_name": "Nguyễn Văn An", "symptoms": ["fever", "breathless"],
              "note": "Sốt 39 độ tại cổng", "declaration": declared["declarations"][0]["qr"]}
    response = await service.client.post(f"/gate/{venue.venue_id}/case", data=report, headers=HTML)
    assert response.status_code == 303 and response.headers["location"].endswith("?done=case")
    page = (await service.client.get(response.headers["location"], headers=HTML)).text
    assert "Đã báo ca nghi ngờ" in page and "Các ca nghi ngờ đã báo hôm nay" in page
    async with service.runtime.database.transaction(readonly=True) as session:
        [case] = (await session.execute(select(SuspectedCase))).scalars().all()
    assert str(case.declaration_id) == declared["declarations"][0]["id"]
    events = await read_events(service.bus_url, service.namespace,
                               lambda found: any(e["type"] == "declaration.case_raised" for e in found))
    [raised] = [e for e in events if e["type"] == "declaration.case_raised"]
    data = raised["data"]
    assert raised["jurisdiction"] == DEMO_COMMUNE and data["commune_path"] == DEMO_COMMUNE
    assert data["venue"]["venue_code"] == venue.code and data["venue"]["unit_name"] == "Chợ Cần Thạnh"
    # The person, the symptoms and the note travel sealed to notification's key: only its
    # private half (here the development pair of the data folder) opens them.
    assert set(data) >= {"sealed_person"} and not {"person", "symptoms", "note", "clear"} & set(data)
    assert "079099012345" not in str(raised) and "Sốt 39" not in str(raised)
    private = sealed.load_private(sealed.default_paths(service.runtime.settings.data_dir)[0])
    inside = json.loads(sealed.open_box(private, data["sealed_person"]["box"],
                                        person_context("declaration.case_raised", data["case_id"])))
    assert inside["symptoms"] == ["fever", "breathless"] and inside["note"] == "Sốt 39 độ tại cổng"
    # The health center gets the contact details of the linked declaration.
    assert inside["person"]["phone"] == "0909123456" and inside["person"]["id_number"] == "079099012345"
    assert inside["person"]["commune_code"] == "27664"


async def test_a_scanned_id_card_of_someone_who_declared_here_today_says_so(declaration_app, mint):
    """The gate's "already declared today?": found through the ID number's blind index (the
    number is stored encrypted), at this venue only, today only."""
    service = declaration_app
    venue, other = service.venues["main"], service.venues["side"]
    sign_in(service, mint)
    token = csrf(await gate_page(service, venue))

    async def scan() -> str:
        page = await service.client.post(f"/gate/{venue.venue_id}/scan", data={"code": CCCD, "csrf_token": token},
                                         headers=HTML)
        assert page.status_code == 200
        return page.text

    assert 'id="declared-today"' not in await scan()
    elsewhere = await service.client.post("/api/declarations", json=declaration(
        other.code, person(full_name="Trần Thị Hoa", id_number="079185012345")))
    assert elsewhere.status_code == 201
    assert 'id="declared-today"' not in await scan()  # another venue's declaration does not count
    here = await service.client.post("/api/declarations", json=declaration(
        venue.code, person(full_name="Trần Thị Hoa", id_number="079 185 012 345", symptoms=["fatigue"])))
    assert here.status_code == 201
    page = await scan()
    notice = re.search(r'<div[^>]*id="declared-today".*?</div>', page, re.S).group(0)
    assert "Người này đã khai báo hôm nay tại địa điểm này" in notice and "Vàng" in notice
