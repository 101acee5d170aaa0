"""The consoles in Chromium, against ``khaibao up`` with its demo data.

A commune focal point opens the intake console, is sent to sign in, comes back, and
follows a registration submitted through the API into the intake, reporting and
notification consoles; the district sees it per commune; sign-out ends the session; the
landing and sign-in pages fit a phone. Screenshots go to test-results/browser/.
"""
from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from libs.common.auth import SESSION_COOKIE
from libs.common.demo import DEMO_PASSWORD
from tests.services.conftest import registration

from .a11y import check_a11y
from .conftest import CHROMIUM, unit_email

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]

COMMUNE_USER = "ubnd.canthanh"
DISTRICT_USER = "vhtt.cangio"
DIACRITICS = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.IGNORECASE)


def _sign_in(page, username: str) -> None:
    assert "/signin" in page.url, page.url
    page.fill("#f-username", username)
    page.fill("#f-password", DEMO_PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state("load")


def _open_signed_in(context, system, service: str, username: str):  # noqa: ANN202
    page = context.new_page()
    page.goto(system.urls[service] + "/", wait_until="load")
    if page.url == system.urls[service] + "/v":
        # The declaration service's root sends a visitor to the code page, which links officials to the sign-in.
        page.click("#officials-signin")
        page.wait_for_load_state("load")
    if "/signin" in page.url:
        _sign_in(page, username)
    assert page.url == system.urls[service] + "/", page.url
    return page


def _reload_until(page, predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(page):
        assert time.monotonic() < deadline, f"{what} not seen within {timeout:.0f}s"
        time.sleep(0.3)
        page.reload(wait_until="load")


def _no_horizontal_scroll(page) -> None:
    # Against the device width: a mobile browser zooms out to show wider content, and then
    # window.innerWidth grows with it.
    device = page.viewport_size["width"]
    widths = page.evaluate("() => [document.scrollingElement.scrollWidth, document.documentElement.clientWidth,"
                           " document.body.scrollWidth, window.innerWidth]")
    assert max(widths) <= device, f"horizontal scroll: {widths} wider than {device} on {page.url}"


def _stylesheet_applied(page) -> None:
    background = page.evaluate("() => getComputedStyle(document.querySelector('.site-header')).backgroundColor")
    assert background == "rgb(11, 74, 90)", background


def test_commune_focal_point_follows_a_registration(system, new_context, screenshots):
    context = new_context()
    page = context.new_page()

    # Not signed in: the intake console sends the browser to provisioning's sign-in page.
    page.goto(system.urls["intake"] + "/", wait_until="load")
    parts = urlsplit(page.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == system.urls["provisioning"] + "/signin"
    assert parse_qs(parts.query)["next"] == [system.urls["intake"] + "/"]
    assert page.locator("h1").inner_text() == "Đăng nhập"
    _stylesheet_applied(page)
    page.screenshot(path=str(screenshots / "signin-desktop.png"), full_page=True)
    check_a11y(page, "signin-desktop")

    _sign_in(page, COMMUNE_USER)
    assert page.url == system.urls["intake"] + "/"
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("h1").inner_text() == "Danh sách đăng ký"
    assert page.locator(".userbar__name").inner_text() == "UBND thị trấn Cần Thạnh"
    assert page.locator(".userbar__role").inner_text() == "Đầu mối UBND phường/xã"
    assert "Thị trấn Cần Thạnh, Huyện Cần Giờ" in page.locator(".lead").inner_text()
    assert DIACRITICS.search(page.locator("main").inner_text())
    cookie = next(c for c in context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    # The cookie is out of reach of scripts.
    assert SESSION_COOKIE not in page.evaluate("() => document.cookie")
    _stylesheet_applied(page)
    page.screenshot(path=str(screenshots / "intake-commune-empty.png"), full_page=True)
    check_a11y(page, "intake-commune-empty")

    # A school of the commune registers through the API.
    name = f"Trường Mầm non Hoa Sen {uuid.uuid4().hex[:4].upper()}"
    created = httpx.post(system.urls["intake"] + "/api/registrations",
                         json=registration("27664", "school", name, contact_email=unit_email()), timeout=10)
    assert created.status_code == 201, created.text
    reference = created.json()["reference"]

    page.reload(wait_until="load")
    row = page.locator("tbody tr", has_text=reference)
    assert row.count() == 1
    assert name in row.inner_text() and "Trường học" in row.inner_text() and "Chờ duyệt" in row.inner_text()
    page.screenshot(path=str(screenshots / "intake-commune.png"), full_page=True)
    check_a11y(page, "intake-commune")

    # Reporting: the same browser session is signed in on the other console (another port).
    reporting = context.new_page()
    reporting.goto(system.urls["reporting"] + "/", wait_until="load")
    assert reporting.url == system.urls["reporting"] + "/"
    _reload_until(reporting, lambda p: int(p.locator("#total").inner_text()) >= 1, "the count in reporting")
    assert reporting.locator("h1").inner_text() == "Bảng số liệu"
    commune_row = reporting.locator('tr[data-path="79/787/27664"]')
    assert "Thị trấn Cần Thạnh" in commune_row.inner_text()
    reporting.screenshot(path=str(screenshots / "reporting-commune.png"), full_page=True)
    check_a11y(reporting, "reporting-commune")

    # Notification: the commune's inbox has the notice.
    inbox = context.new_page()
    inbox.goto(system.urls["notification"] + "/", wait_until="load")
    _reload_until(inbox, lambda p: p.locator("tbody tr", has_text=reference).count() == 1, "the notice")
    notice = inbox.locator("tbody tr", has_text=reference).inner_text()
    assert f"Đăng ký mới: {name}" in notice and "Thị trấn Cần Thạnh" in notice
    # Received at Ho Chi Minh City's clock time (UTC+7), not at UTC.
    shown = datetime.strptime(inbox.locator("tbody tr", has_text=reference).locator("td").first.inner_text(),
                              "%d/%m/%Y %H:%M").replace(tzinfo=timezone(timedelta(hours=7)))
    assert abs(datetime.now(UTC) - shown) < timedelta(minutes=5), shown
    assert inbox.locator("h1").inner_text() == "Hộp thư"
    inbox.screenshot(path=str(screenshots / "notification-commune.png"), full_page=True)
    check_a11y(inbox, "notification-commune")
    assert context.errors == [], context.errors  # no CSP violation, no failed load

    # The district sees the commune's registration in its per-commune table.
    district = new_context()
    by_commune = _open_signed_in(district, system, "reporting", DISTRICT_USER)
    _reload_until(by_commune, lambda p: int(p.locator('tr[data-path="79/787/27664"] td').nth(1).inner_text()) >= 1,
                  "the district's count")
    assert by_commune.locator("#funnel-table tbody tr").count() == 7  # the seven communes of Cần Giờ
    assert by_commune.locator(".userbar__role").inner_text() == "Đầu mối Phòng Văn hóa và Thông tin quận/huyện"
    by_commune.screenshot(path=str(screenshots / "reporting-district.png"), full_page=True)
    check_a11y(by_commune, "reporting-district")
    # The district's intake console lists it too; a school's notice is the commune's, shown below the district.
    district_intake = district.new_page()
    district_intake.goto(system.urls["intake"] + "/", wait_until="load")
    assert district_intake.locator("tbody tr", has_text=reference).count() == 1
    assert district.errors == [], district.errors


def test_sign_out(system, new_context, screenshots):
    context = new_context()
    page = _open_signed_in(context, system, "notification", COMMUNE_USER)
    assert any(c["name"] == SESSION_COOKIE for c in context.cookies())
    page.get_by_role("button", name="Đăng xuất").click()
    page.wait_for_load_state("load")
    assert page.url == system.urls["provisioning"] + "/signin"
    assert not any(c["name"] == SESSION_COOKIE for c in context.cookies())
    page.screenshot(path=str(screenshots / "after-signout.png"), full_page=True)
    check_a11y(page, "after-signout")
    # Every console asks for a sign-in again.
    for service in ("intake", "notification", "reporting"):
        page.goto(system.urls[service] + "/", wait_until="load")
        assert urlsplit(page.url).path == "/signin", (service, page.url)
    assert context.errors == [], context.errors


def test_wrong_password_in_the_browser(system, new_context, screenshots):
    context = new_context()
    page = context.new_page()
    page.goto(system.urls["provisioning"] + "/signin", wait_until="load")
    page.fill("#f-username", DISTRICT_USER)
    page.fill("#f-password", "khong-phai-mat-khau")
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state("load")
    alert = page.get_by_role("alert")
    assert "Tên đăng nhập hoặc mật khẩu không đúng" in alert.inner_text()
    # Styled as an error (a red bar), not as plain text.
    assert alert.evaluate("e => getComputedStyle(e).borderLeftWidth") == "6px"
    assert alert.evaluate("e => getComputedStyle(e).borderLeftStyle") == "solid"
    assert page.input_value("#f-password") == ""
    assert "khong-phai-mat-khau" not in page.content()
    page.screenshot(path=str(screenshots / "signin-wrong-password.png"), full_page=True)
    check_a11y(page, "signin-wrong-password")


CONSOLES = {"intake-console": "intake", "provisioning-console": "provisioning", "declaration-console": "declaration",
            "notification-console": "notification", "reporting-console": "reporting"}


@pytest.mark.parametrize("which", ["landing", "signin", "help", "password", *CONSOLES])
def test_pages_fit_a_phone(system, new_context, screenshots, which):
    context = new_context(phone=True)
    if which in CONSOLES:
        # A long unit name in the lists: the tables must fold, not push the page sideways.
        created = httpx.post(system.urls["intake"] + "/api/registrations", timeout=10, json=registration(
            "27664", "essential_shop", "Cửa hàng Bách hóa Xanh Lương Văn Nho - chi nhánh Thị trấn Cần Thạnh",
            contact_email=unit_email()))
        assert created.status_code == 201
        page = _open_signed_in(context, system, CONSOLES[which], COMMUNE_USER)
        if which in ("reporting-console", "notification-console"):
            reference = created.json()["reference"]
            _reload_until(page, lambda p: p.locator("tbody tr").count() > 0
                          and (which == "reporting-console" or p.locator("tbody tr", has_text=reference).count()),
                          f"rows on {which}")
        assert page.locator("tbody tr").count() > 0
    elif which == "password":
        # A failed attempt first: the page lists it (a table that must fold on a phone).
        wrong = httpx.post(system.urls["provisioning"] + "/api/token", timeout=10,
                           json={"username": COMMUNE_USER, "password": "khong-phai-mat-khau"})
        assert wrong.status_code == 401
        page = _open_signed_in(context, system, "provisioning", COMMUNE_USER)
        page.goto(system.urls["provisioning"] + "/password", wait_until="load")
        assert page.locator("h1").inner_text() == "Đổi mật khẩu"
        assert page.locator("#f-new").get_attribute("autocomplete") == "new-password"
        failures = page.locator("#failures-title + p + .table-wrap tbody tr")
        assert failures.count() >= 1 and "127.0.0.x" in failures.first.inner_text()
    else:
        page = context.new_page()
        url = {"landing": system.landing_url + "/", "signin": system.urls["provisioning"] + "/signin",
               "help": system.urls["provisioning"] + "/help"}[which]
        response = page.goto(url, wait_until="load")
        assert response is not None and response.ok
    _stylesheet_applied(page)
    _no_horizontal_scroll(page)
    if which == "landing":
        consoles = page.locator(".card--link")
        assert consoles.count() == 5
        hrefs = {consoles.nth(i).locator("a.button").get_attribute("href") for i in range(5)}
        assert hrefs == set(system.urls.values())
        assert page.locator("h1").inner_text() == "Hệ thống khai báo y tế điện tử"
    if which == "signin":
        # The fields are large enough to tap.
        box = page.locator("#f-username").bounding_box()
        assert box is not None and box["height"] >= 40 and box["width"] >= 300
    page.screenshot(path=str(screenshots / f"{which}-phone.png"), full_page=True)
    check_a11y(page, f"{which}-phone")
    assert context.errors == [], context.errors


# --- WCAG 2.1 A/AA: the pages no other browser test shows, per role ---------------------------

A11Y_PAGES = {
    None: ["provisioning/help/city", "provisioning/help/district", "provisioning/help/commune",
           "provisioning/help/health", "provisioning/help/unit", "provisioning/help/gate",
           "provisioning/help/visitor", "provisioning/help?lang=en", "intake/status", "intake/d/787"],
    "so.tttt": ["provisioning/", "provisioning/units", "intake/lists", "reporting/", "notification/"],
    "vhtt.cangio": ["provisioning/", "intake/lists", "notification/support/787"],
    "ttyt.cangio": ["notification/", "declaration/", "declaration/subject"],
    "donvi.chocanthanh": ["provisioning/"],
    "cong.chocanthanh": ["declaration/gate"],
}


@pytest.mark.parametrize("role", list(A11Y_PAGES), ids=lambda role: role or "public")
def test_remaining_pages_pass_axe(system, new_context, role):
    page = new_context().new_page()
    if role:
        page.goto(system.urls["provisioning"] + "/signin", wait_until="load")
        _sign_in(page, role)
    for path in A11Y_PAGES[role]:
        service, _, rest = path.partition("/")
        response = page.goto(f"{system.urls[service]}/{rest}", wait_until="load")
        assert response is not None and response.ok, (path, response and response.status)
        check_a11y(page, f"{role or 'public'}:{path}")
