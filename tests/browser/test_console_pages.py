"""Console pages that had no browser test, in Chromium against ``khaibao up``:

* notification's ``/alerts/settings``: the district health center sets the district's alert
  e-mails and webhook; bad input is refused with the Vietnamese message on the page;
  what was saved is shown again after a reload; a commune focal point edits its commune's;
* reporting's ``/ncovi``: the city uploads the NCOVI list (.xlsx), sees what was imported;
  a file with bad rows shows the row report, a file of another kind the error;
* reporting's ``/unit``: a unit administrator sees its own venues and numbers only (a
  second unit, issued through intake and provisioning, declares too), with its charts.

Screenshots go to test-results/browser/ (settings-*, ncovi-*, unit-dashboard-*).
"""
from __future__ import annotations

import io
import time
import uuid

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from tests.services.conftest import UpProcess, demo_token, registration

from .a11y import check_a11y
from .conftest import CHROMIUM, sign_in_at, unit_email
from .declaration_support import demo_venues
from .test_consoles import DIACRITICS, _no_horizontal_scroll

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]

HEALTH_OFFICER = "ttyt.cangio"
COMMUNE_USER = "ubnd.canthanh"
CITY_USER = "so.tttt"
UNIT_ADMIN = "donvi.chocanthanh"
NCOVI_HEADER = ["STT", "Tên đơn vị", "Địa chỉ", "Phường/xã", "Quận/huyện", "Mã số thuế", "Mã NCOVI"]



def submit(page) -> int:  # noqa: ANN001
    with page.expect_navigation(wait_until="load") as navigation:
        page.locator("main form button[type=submit]").last.click()
    return navigation.value.status


def unexpected(errors: list[str]) -> list[str]:
    """Console errors other than the 422 answers the refused forms get on purpose."""
    return [e for e in errors if "status of 422" not in e]


def no_english(page) -> None:  # noqa: ANN001
    text = page.locator("main").inner_text()
    assert DIACRITICS.search(text), text[:200]
    for english in ("Save", "Upload", "Dashboard", "Declarations", "Webhook address", "E-mail addresses", "Error"):
        assert english not in text, f"{english!r} on a Vietnamese page: {page.url}"


# --- /alerts/settings ----------------------------------------------------------------------

def test_district_sets_its_alert_contacts(system, new_context, screenshots):
    context = new_context()
    url = system.urls["notification"] + "/alerts/settings"
    page = sign_in_at(context, url, HEALTH_OFFICER)
    assert page.locator("h1").inner_text() == "Địa chỉ nhận cảnh báo"
    assert "Huyện Cần Giờ" in page.locator("main .lead").inner_text()
    no_english(page)

    # A bad e-mail address: refused, said in Vietnamese next to the field, nothing saved.
    page.fill("#f-emails", "ttyt@cangio.hochiminhcity.gov.vn\nkhong-phai-dia-chi")
    assert submit(page) == 422
    assert "Có địa chỉ thư điện tử không hợp lệ" in page.locator(".error-summary").inner_text()
    assert "khong-phai-dia-chi" in page.locator("#f-emails").input_value()  # what was typed is kept
    page.screenshot(path=str(screenshots / "settings-bad-email.png"), full_page=True)
    check_a11y(page, "settings-bad-email")

    # A webhook that is not a web address.
    page.fill("#f-emails", "ttyt@cangio.hochiminhcity.gov.vn")
    page.fill("#f-webhook_url", "ftp://sms.cangio.example/alerts")
    assert submit(page) == 422
    assert "Địa chỉ webhook không hợp lệ" in page.locator("main").inner_text()
    page.screenshot(path=str(screenshots / "settings-bad-webhook.png"), full_page=True)
    check_a11y(page, "settings-bad-webhook")

    # Good values: saved, shown after a reload, with the signing secret.
    page.fill("#f-emails", "ttyt@cangio.hochiminhcity.gov.vn\nyte.cangio@example.vn")
    page.fill("#f-webhook_url", "https://sms.cangio.example/alerts")
    assert submit(page) == 200
    assert "Đã lưu địa chỉ nhận cảnh báo" in page.locator("main").inner_text()
    page.reload(wait_until="load")
    assert page.locator("#f-emails").input_value().split() == ["ttyt@cangio.hochiminhcity.gov.vn",
                                                              "yte.cangio@example.vn"]
    assert page.locator("#f-webhook_url").input_value() == "https://sms.cangio.example/alerts"
    secret = page.locator("#webhook-secret").inner_text()
    assert len(secret) >= 40
    assert "Trung tâm Y tế huyện Cần Giờ" in page.locator("main").inner_text()  # last changed by
    no_english(page)
    page.screenshot(path=str(screenshots / "settings-saved.png"), full_page=True)
    check_a11y(page, "settings-saved")
    assert unexpected(context.errors) == [], context.errors

    # The commune focal point sees its commune's contacts (empty), not the district's.
    commune_context = new_context(phone=True)
    commune = sign_in_at(commune_context, url, COMMUNE_USER)
    assert "Thị trấn Cần Thạnh" in commune.locator("main .lead").inner_text()
    assert commune.locator("#f-emails").input_value() == ""
    assert commune.locator("#f-webhook_url").input_value() == ""
    assert secret not in commune.content() and "yte.cangio" not in commune.content()
    commune.fill("#f-emails", "ubnd.canthanh@example.vn")
    assert submit(commune) == 200
    _no_horizontal_scroll(commune)
    commune.screenshot(path=str(screenshots / "settings-commune-phone.png"), full_page=True)
    check_a11y(commune, "settings-commune-phone")
    assert commune_context.errors == [], commune_context.errors

    # ... and the district's stay as they were.
    page.reload(wait_until="load")
    assert "ubnd.canthanh" not in page.locator("#f-emails").input_value()
    assert page.locator("#webhook-secret").inner_text() == secret


# --- /ncovi -----------------------------------------------------------------------------------

def ncovi_xlsx(rows: list[list]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["Danh sách đơn vị đã sử dụng ứng dụng NCOVI"])
    sheet.append(NCOVI_HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload(page, name: str, content: bytes, kind: str) -> int:  # noqa: ANN001
    page.set_input_files("#f-file", files=[{"name": name, "mimeType": kind, "buffer": content}])
    with page.expect_navigation(wait_until="load") as navigation:
        page.get_by_role("button", name="Tải lên và kiểm tra").click()
    return navigation.value.status


def test_city_uploads_the_ncovi_list(system, new_context, screenshots):
    context = new_context()
    page = sign_in_at(context, system.urls["reporting"] + "/ncovi", CITY_USER)
    assert page.locator("h1").inner_text() == "Đơn vị đã sử dụng NCOVI"
    assert page.locator("#ncovi-total").inner_text() == "0"
    no_english(page)
    page.screenshot(path=str(screenshots / "ncovi-empty.png"), full_page=True)
    check_a11y(page, "ncovi-empty")
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    # Rows with errors: nothing imported, a row report in Vietnamese.
    bad = ncovi_xlsx([[1, "Công ty TNHH Hải Sản Cần Giờ", "12 Đường Duyên Hải", "Thị trấn Cần Thạnh", "", "123", ""],
                      [2, "", "", "Bình Khánh", "Cần Giờ", "", "NCOVI-7788"],
                      [3, "Nhà hàng Bến Nghé", "5 Lê Lợi", "Xã Không Có", "Quận 1", "0312345670", ""]])
    assert upload(page, "ncovi-loi.xlsx", bad, xlsx) == 422
    assert "Chưa nhập đơn vị nào" in page.locator(".error-summary").inner_text()
    assert page.locator("#error-count").inner_text() == "3"
    report = page.locator("#row-report tbody")
    assert report.locator("tr").count() == 3
    text = report.inner_text()
    assert "Mã số thuế gồm 10 chữ số" in text and "Thiếu tên đơn vị" in text, text
    assert page.locator("#ncovi-total").inner_text() == "0"
    no_english(page)
    page.screenshot(path=str(screenshots / "ncovi-row-report.png"), full_page=True)
    check_a11y(page, "ncovi-row-report")

    # Not a spreadsheet: the error, nothing else.
    assert upload(page, "ncovi.pdf", b"%PDF-1.4\n", "application/pdf") == 422
    assert "Hãy tải lên tệp .xlsx hoặc .csv" in page.locator(".flash--error").inner_text()

    # A good file: imported, counted per commune, listed.
    good = ncovi_xlsx([[1, "Công ty TNHH Hải Sản Cần Giờ", "12 Đường Duyên Hải", "Thị trấn Cần Thạnh", "Cần Giờ",
                        "0312345678", ""],
                       [2, "Trường THCS Bình Khánh", "", "Xã Bình Khánh", "Huyện Cần Giờ", "", "NCOVI-7788"],
                       [3, "Nhà hàng Bến Nghé", "5 Lê Lợi", "26740", "", "0312345670", "NC-26740"]])
    assert upload(page, "ncovi.xlsx", good, xlsx) == 200
    assert "Đã nhập: 3 đơn vị mới, 0 đơn vị được cập nhật." in page.locator("#import-done").inner_text()
    assert page.locator("#ncovi-total").inner_text() == "3"
    assert page.locator("#ncovi-units tbody tr").count() == 3
    counts = page.locator("#ncovi-counts tbody").inner_text()
    assert "Thị trấn Cần Thạnh" in counts and "Xã Bình Khánh" in counts and "Phường Bến Nghé" in counts
    no_english(page)
    page.screenshot(path=str(screenshots / "ncovi-imported.png"), full_page=True)
    check_a11y(page, "ncovi-imported")
    assert unexpected(context.errors) == [], context.errors

    # A commune focal point sees the units of its commune only, and no upload form.
    commune = sign_in_at(new_context(phone=True), system.urls["reporting"] + "/ncovi", COMMUNE_USER)
    assert commune.locator("#ncovi-total").inner_text() == "1"
    assert "Bình Khánh" not in commune.locator("#ncovi-units").inner_text()
    assert commune.locator("#f-file").count() == 0
    _no_horizontal_scroll(commune)
    commune.screenshot(path=str(screenshots / "ncovi-commune-phone.png"), full_page=True)
    check_a11y(commune, "ncovi-commune-phone")


# --- /unit ------------------------------------------------------------------------------------

def _bearer(system: UpProcess, username: str) -> dict:
    return {"authorization": f"Bearer {demo_token(system, username)}"}


def _until(what: str, probe, timeout: float = 60.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} not seen within {timeout:.0f}s"
        time.sleep(0.5)


def other_unit_venue(system: UpProcess) -> dict:
    """A second unit of the same commune, through the real flow: registered, accepted and
    forwarded by the district, issued by the city. Its first venue, once declarations can reach it."""
    name = f"Phòng Thử Nghiệm {uuid.uuid4().hex[:4].upper()}"
    intake, provisioning = system.urls["intake"], system.urls["provisioning"]
    created = httpx.post(intake + "/api/registrations", json=registration("27664", "state_agency", name, venue_count=1, contact_email=unit_email()),
                         timeout=10)
    assert created.status_code == 201, created.text
    district, city = _bearer(system, "vhtt.cangio"), _bearer(system, CITY_USER)
    accepted = httpx.post(f"{intake}/api/registrations/{created.json()['id']}/accept", headers=district, timeout=10)
    assert accepted.status_code == 200, accepted.text
    assert httpx.post(intake + "/api/batches", headers=district, json={}, timeout=10).status_code == 201

    def issued_unit():  # noqa: ANN202
        for batch in httpx.get(provisioning + "/api/batches", headers=city, timeout=10).json():
            if batch["pending"] and not batch["active_job"]:
                httpx.post(f"{provisioning}/api/batches/{batch['id']}/issue", headers=city, timeout=10)
        units = httpx.get(provisioning + "/api/units", params={"q": name}, headers=city, timeout=10).json()
        return units[0] if units else None

    unit = _until("the second unit's accounts", issued_unit, timeout=90)
    detail = httpx.get(f"{provisioning}/api/units/{unit['id']}", headers=city, timeout=10).json()
    venue = _until("the second unit's venue", lambda: detail["venues"][0] if detail["venues"] else None)
    _until("the venue in the declaration service", lambda: httpx.get(
        f"{system.urls['declaration']}/api/venues/{venue['code']}", timeout=10).status_code == 200)
    return {**venue, "unit_name": name}


def declare(system: UpProcess, venue_code: str, *, fever: bool = False) -> None:
    person = {"full_name": "Trần Văn Bình", "id_number": "079085012345", "birth": "1985", "gender": "male", "phone": "0903000222",
              "province_code": "79", "district_code": "787", "commune_code": "27664", "street": "3 Rừng Sác",
              **({"symptoms": ["fever", "cough"]} if fever else {})}
    body = {"venue_code": venue_code, "people": [person], "consent": True, "idempotency_key": uuid.uuid4().hex}
    response = httpx.post(system.urls["declaration"] + "/api/declarations", json=body, timeout=20)
    assert response.status_code == 201, response.text


def test_unit_dashboard_shows_its_own_venues_only(system, new_context, screenshots):
    own = demo_venues(system)
    other = other_unit_venue(system)
    declare(system, own[0]["code"])
    declare(system, own[0]["code"], fever=True)
    declare(system, own[1]["code"])
    for _ in range(4):
        declare(system, other["code"])

    context = new_context()
    page = sign_in_at(context, system.urls["reporting"] + "/unit", UNIT_ADMIN)

    def counted(p) -> bool:  # noqa: ANN001
        return p.locator("#kpi-declarations").inner_text() == "3"

    deadline = time.monotonic() + 60
    while not counted(page):
        assert time.monotonic() < deadline, "the unit's 3 declarations not on its dashboard"
        time.sleep(0.5)
        page.reload(wait_until="load")
    assert page.locator("h1").inner_text() == "Bảng số liệu"
    assert page.locator("#kpi-flagged").inner_text() == "1"
    venues = page.locator("section[aria-labelledby=h-venues] table tbody tr")
    codes = sorted(venues.nth(i).locator("td").nth(2).inner_text() for i in range(venues.count()))
    assert codes == sorted(v["code"] for v in own), codes
    main = page.locator("main").inner_text()
    assert other["code"] not in main and other["unit_name"] not in main
    page.screenshot(path=str(screenshots / "unit-dashboard.png"), full_page=True)
    check_a11y(page, "unit-dashboard")
    # The charts are drawn: per day, per hour and the venues, each with bars of some size.
    assert page.locator("svg.chart").count() >= 3
    for chart in ("h-days", "h-hours", "h-venues"):
        areas = page.eval_on_selector_all(f"section[aria-labelledby={chart}] svg.chart rect.chart__bar",
                                          "bars => bars.map(b => b.getBBox().width * b.getBBox().height)")
        assert any(area > 0 for area in areas), (chart, areas)
    no_english(page)
    assert context.errors == [], context.errors

    # The area dashboard and the API of another area are not the unit's.
    assert page.goto(system.urls["reporting"] + "/?area=79/787", wait_until="load").status in (303, 403, 200)
    assert other["code"] not in page.locator("body").inner_text()

    phone = sign_in_at(new_context(phone=True), system.urls["reporting"] + "/unit", UNIT_ADMIN)
    _no_horizontal_scroll(phone)
    phone.screenshot(path=str(screenshots / "unit-dashboard-phone.png"), full_page=True)
    check_a11y(phone, "unit-dashboard-phone")


# --- the unit's way to its alerts -------------------------------------------------------------

def test_unit_people_reach_their_alerts(system, new_context, screenshots):
    alerts = system.urls["notification"] + "/alerts/unit"
    admin = new_context()
    home = sign_in_at(admin, system.urls["provisioning"] + "/", UNIT_ADMIN)
    home.click("#unit-alerts-link")
    home.wait_for_load_state("load")
    assert home.url == alerts
    assert home.locator("h1").inner_text() == "Cảnh báo tại địa điểm của đơn vị"

    gate = new_context(phone=True)
    page = sign_in_at(gate, system.urls["declaration"] + "/gate", "cong.chocanthanh")
    page.locator("main a.button").first.click()  # the first gate's screen
    page.wait_for_load_state("load")
    assert "/gate/" in page.url
    link = page.locator("#unit-alerts-link")
    assert link.inner_text() == "Cảnh báo ca nghi ngờ tại địa điểm của đơn vị"
    page.screenshot(path=str(screenshots / "gate-screen-alerts-link-phone.png"), full_page=False)
    check_a11y(page, "gate-screen-alerts-link-phone")
    link.click()
    page.wait_for_load_state("load")
    assert page.url == alerts and page.locator("#unit-alerts").count() == 1
    _no_horizontal_scroll(page)
    assert admin.errors == [] and gate.errors == [], (admin.errors, gate.errors)


def test_city_and_district_read_the_sign_in_history(system, new_context, screenshots):
    """Provisioning's ``/signins`` (issue 16): a refused sign-in is on the page of the city
    and of its district, with the filters and the .xlsx export; it fits a phone."""
    context = new_context()
    page = context.new_page()
    page.goto(system.urls["provisioning"] + "/signin", wait_until="load")
    page.fill("#f-username", HEALTH_OFFICER)
    page.fill("#f-password", "khong-phai-mat-khau-42")
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state("load")
    assert "Tên đăng nhập hoặc mật khẩu không đúng" in page.get_by_role("alert").inner_text()

    city = new_context()
    page = sign_in_at(city, system.urls["provisioning"] + "/", CITY_USER)
    page.get_by_role("link", name="Lịch sử đăng nhập").click()
    page.wait_for_load_state("load")
    assert page.url.startswith(system.urls["provisioning"] + "/signins"), page.url
    no_english(page)
    page.select_option("#f-outcome", "failure")
    page.fill("#f-q", "ttyt")
    assert submit(page) == 200
    rows = page.locator("#signin-history tbody tr")
    assert rows.count() >= 1
    first = rows.first.inner_text()
    assert HEALTH_OFFICER in first and "Thất bại" in first and "127.0.0.1" in first, first
    assert "khong-phai-mat-khau" not in page.content()
    page.screenshot(path=str(screenshots / "signins-city.png"), full_page=True)
    check_a11y(page, "signins-city")
    with page.expect_download() as download:
        page.get_by_role("link", name="Tải các sự kiện này (.xlsx)").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    with open(download.value.path(), "rb") as fh:
        sheet = load_workbook(io.BytesIO(fh.read())).active
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert HEALTH_OFFICER in cells and CITY_USER not in cells  # the city's own success is filtered out

    phone = new_context(phone=True)
    district = sign_in_at(phone, system.urls["provisioning"] + "/", "vhtt.cangio")
    district.goto(system.urls["provisioning"] + "/signins?outcome=failure", wait_until="load")
    assert HEALTH_OFFICER in district.locator("#signin-history").inner_text()
    _no_horizontal_scroll(district)
    district.screenshot(path=str(screenshots / "signins-district-phone.png"), full_page=True)
    check_a11y(district, "signins-district-phone")
    # (the first context's 401 is the refused sign-in, on purpose)
    assert unexpected(city.errors) == [] and unexpected(phone.errors) == []
