"""Issue 18.5, the small things that cost officials time, in Chromium against ``khaibao up``:

* an upload's "File received; every row is being checked" banner is gone once the final
  state shows;
* a row with another error still gets its duplicate reported (in the file, and against an
  existing registration): every problem of every row;
* the commune chooses several registrations and accepts (or returns) them together: each
  gets its own history entry; a choice with another commune's registration changes nothing;
* the city's provisioning home shows each gate with its unit;
* the health officer's alert page shows the person's nationality;
* the list template's instructions read "'Danh sách', từ dòng 2" (no stray ". ").

Screenshots: test-results/browser/small-*.png.
"""
from __future__ import annotations

import io
import random
import uuid

import httpx
import pytest
from openpyxl import load_workbook

from services.intake.tests.sheets import fill_template, unit_row
from tests.services.conftest import demo_token, registration

from .a11y import check_a11y
from .conftest import CHROMIUM, sign_in_at, unit_email
from .declaration_support import demo_venues, fill_person

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]

COMMUNE_USER = "ubnd.canthanh"
DISTRICT_USER = "vhtt.cangio"
CITY_USER = "so.tttt"
HEALTH_OFFICER = "ttyt.cangio"


def _signed_in(context, system, service: str, username: str, path: str = "/"):  # noqa: ANN001, ANN202
    return sign_in_at(context, system.urls[service] + path, username)


def _register(system, name: str, commune: str = "27664", **extra) -> dict:  # noqa: ANN001, ANN003
    body = registration(commune_code=commune, name=name, contact_email=unit_email(), **extra)
    # Each from an address of its own (any of 127/8 is this machine): intake holds a burst of
    # registrations from one address apart as suspected spam.
    source = f"127.0.{random.randint(1, 254)}.{random.randint(1, 254)}"
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10) as client:
        response = client.post(system.urls["intake"] + "/api/registrations", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _upload(page, content: bytes) -> None:  # noqa: ANN001
    page.goto(page.url.split("/imports")[0] + "/imports", wait_until="load")
    page.set_input_files("#f-file", files=[{"name": "danh-sach.xlsx", "buffer": content,
                                             "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    with page.expect_navigation(wait_until="load"):
        page.get_by_role("button", name="Tải lên và kiểm tra").click()
    # The page reloads itself every second until the rows are checked.
    page.wait_for_function("() => !document.querySelector('meta[http-equiv=refresh]')", timeout=60000)
    page.wait_for_load_state("load")


def _template(page) -> bytes:  # noqa: ANN001
    with page.expect_download() as download:
        page.goto(page.url.split("/imports")[0] + "/imports", wait_until="load")
        page.get_by_role("link", name="Tải mẫu danh sách").click()
    return download.value.path().read_bytes()


def test_the_templates_instructions_have_no_stray_full_stop(system, new_context):
    page = _signed_in(new_context(), system, "intake", DISTRICT_USER, "/imports")
    guide = load_workbook(io.BytesIO(_template(page)))["Hướng dẫn"]
    text = " ".join(str(c.value) for row in guide.iter_rows() for c in row if c.value)
    assert "trang 'Danh sách', từ dòng 2; giữ nguyên dòng tiêu đề." in text, text[:400]
    assert "'Danh sách'." not in text


def test_upload_banner_goes_and_every_problem_of_every_row_is_reported(system, new_context, screenshots):
    context = new_context()
    page = _signed_in(context, system, "intake", DISTRICT_USER, "/imports")
    template = _template(page)

    # (b) Row 3 repeats row 2's tax code and also has a bad phone; row 4 repeats an existing
    # registration's tax code and has a bad e-mail: each duplicate is reported with the other error.
    existing_tax = f"03{uuid.uuid4().int % 10**8:08d}"
    _register(system, f"Công ty Có Sẵn {uuid.uuid4().hex[:4].upper()}", tax_code=existing_tax)
    tax = f"03{uuid.uuid4().int % 10**8:08d}"
    rows = [unit_row(1, tax_code=tax), unit_row(2, tax_code=tax, contact_phone="12345"),
            unit_row(3, tax_code=existing_tax, contact_email="khong-phai-email")]
    _upload(page, fill_template(template, rows))
    report = page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "small-upload-report.png"), full_page=True)
    check_a11y(page, "small-upload-report")
    # (a) The final state only: the "being checked" banner is gone.
    assert "đang kiểm tra từng dòng" not in report, report[:500]
    assert "Số điện thoại không hợp lệ" in report
    # Row 3: its bad phone and its duplicate of row 2; row 4: its bad e-mail and the existing registration.
    assert "Trùng mã số thuế với dòng 2 trong tệp" in report, report
    assert "E-mail không hợp lệ" in report and "Mã số thuế đã được đăng ký" in report, report
    assert context.errors == [] or all("422" in e for e in context.errors), context.errors


def test_the_commune_accepts_several_registrations_together(system, new_context, screenshots):
    tag = uuid.uuid4().hex[:4].upper()
    mine = [_register(system, f"Cửa hàng Chọn Nhiều {tag} {i}") for i in range(3)]
    context = new_context()
    page = _signed_in(context, system, "intake", COMMUNE_USER)
    page.goto(system.urls["intake"] + f"/?q={tag}", wait_until="load")
    assert page.locator("#bulk-form").count() == 1
    for item in mine[:2]:
        page.get_by_label(f"Chọn {item['reference']}").check()
    page.screenshot(path=str(screenshots / "small-bulk-chosen.png"), full_page=True)
    check_a11y(page, "small-bulk-chosen")
    page.get_by_role("button", name="Duyệt các đăng ký đã chọn").click()
    page.wait_for_load_state("load")
    assert "Đã duyệt các đăng ký đã chọn." in page.locator(".flash").inner_text()
    token = demo_token(system, COMMUNE_USER)
    for item, status in zip(mine, ("accepted", "accepted", "submitted"), strict=True):
        got = httpx.get(f"{system.urls['intake']}/api/registrations/{item['id']}", timeout=10,
                        headers={"authorization": f"Bearer {token}"}).json()
        assert got["status"] == status, got
    # Each accepted row has its own history entry, by the commune.
    detail = context.new_page()
    detail.goto(f"{system.urls['intake']}/registrations/{mine[0]['id']}", wait_until="load")
    assert "UBND thị trấn Cần Thạnh" in detail.locator(".timeline").inner_text()

    # Return needs a reason; with it, the chosen one is returned.
    page.goto(system.urls["intake"] + f"/?q={tag}", wait_until="load")
    page.get_by_label(f"Chọn {mine[2]['reference']}").check()
    page.get_by_role("button", name="Trả lại các đăng ký đã chọn").click()
    page.wait_for_load_state("load")
    assert page.locator("#bulk-error").is_visible()
    page.get_by_label(f"Chọn {mine[2]['reference']}").check()
    page.fill("#f-bulk-reason", "Thiếu mã số thuế của đơn vị")
    page.get_by_role("button", name="Trả lại các đăng ký đã chọn").click()
    page.wait_for_load_state("load")
    assert "Đã trả lại các đăng ký đã chọn" in page.locator(".flash").inner_text()

    # Another commune's registration slipped into the choice: refused, nothing changed.
    other = _register(system, f"Cửa hàng Xã Khác {tag}", commune="27667")
    fresh = _register(system, f"Cửa hàng Chọn Nhiều {tag} 9")
    page.goto(system.urls["intake"] + f"/?q={tag}", wait_until="load")
    page.get_by_label(f"Chọn {fresh['reference']}").check()
    page.evaluate("""id => { const box = document.querySelector('input[name=registration]').cloneNode();
        box.value = id; box.checked = true; box.id = 'forged'; document.querySelector('#bulk-form').append(box); }""",
                  other["id"])
    response = None
    with page.expect_navigation(wait_until="load") as navigation:
        page.get_by_role("button", name="Duyệt các đăng ký đã chọn").click()
    response = navigation.value
    assert response.status == 404
    got = httpx.get(f"{system.urls['intake']}/api/registrations/{fresh['id']}", timeout=10,
                    headers={"authorization": f"Bearer {token}"}).json()
    assert got["status"] == "submitted", got

    # On a phone the list with its boxes fits the width.
    phone = _signed_in(new_context(phone=True), system, "intake", COMMUNE_USER, f"/?q={tag}")
    assert phone.evaluate("() => document.scrollingElement.scrollWidth") <= 390
    phone.screenshot(path=str(screenshots / "small-bulk-phone.png"), full_page=True)


def test_the_citys_home_shows_each_gate_with_its_unit(system, new_context, screenshots):
    venues = demo_venues(system)
    page = _signed_in(new_context(), system, "provisioning", CITY_USER)
    row = page.locator("tr", has_text=venues[0]["code"]).first
    assert "Chợ Cần Thạnh" in row.inner_text(), row.inner_text()
    page.screenshot(path=str(screenshots / "small-city-home.png"), full_page=True)
    check_a11y(page, "small-city-home")


def test_the_officers_alert_page_shows_the_nationality(system, new_context, screenshots):
    venue = demo_venues(system)[0]
    visitor = new_context(phone=True).new_page()
    visitor.goto(f"{system.urls['declaration']}/v/{venue['code']}", wait_until="load")
    name = "Kim Min " + "".join(random.choice("abcdeghiklmnoprstuvy") for _ in range(5)).title()
    fill_person(visitor, 0, name=name, id_number="079188001234", birth="05/06/1988", gender=1, phone="0908 111 222")
    visitor.fill("#f-p0-nationality", "Hàn Quốc")
    visitor.check("#f-p0-symptoms-fever")
    visitor.check("#f-p0-symptoms-cough")  # fever and cough: red, an alert
    visitor.check("#f-consent")
    visitor.click("#send")
    try:
        visitor.wait_for_url("**/done/**", timeout=20000)
    except Exception:  # noqa: BLE001 - say what the form said
        visitor.screenshot(path=str(screenshots / "small-alert-form-refused.png"), full_page=True)
        raise AssertionError(visitor.locator("main").inner_text()[:1500]) from None
    inbox = _signed_in(new_context(), system, "notification", HEALTH_OFFICER, "/alerts")
    inbox.wait_for_function("() => document.querySelector('#alerts-body tr.alert-row')", timeout=15000)
    link = inbox.locator("#alerts-body tr.alert-row a").first
    deadline = 30
    while deadline:
        link.click()
        inbox.wait_for_load_state("load")
        if name.lower() in inbox.locator("#person").inner_text().lower():
            break
        inbox.go_back(wait_until="load")
        inbox.reload(wait_until="load")
        deadline -= 1
    details = inbox.locator("#person").inner_text()
    assert "Quốc tịch" in details and "Hàn Quốc" in details, details
    inbox.screenshot(path=str(screenshots / "small-alert-nationality.png"), full_page=True)
    check_a11y(inbox, "small-alert-nationality")
