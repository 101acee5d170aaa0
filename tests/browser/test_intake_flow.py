"""A unit registers on a phone; the commune accepts and sends its list; the district
forwards it to the city; the unit sees its status change. Chromium against ``khaibao up``.
Screenshots go to test-results/browser/intake-*.png."""
from __future__ import annotations

import time
import uuid

import pytest

from libs.common.demo import DEMO_PASSWORD

from .a11y import check_a11y
from .conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]


def _no_horizontal_scroll(page) -> None:  # noqa: ANN001
    device = page.viewport_size["width"]
    widths = page.evaluate("() => [document.scrollingElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
    assert max(widths) <= device, f"horizontal scroll: {widths} wider than {device} on {page.url}"


def _signed_in(context, system, username: str, path: str = "/"):  # noqa: ANN001, ANN202
    page = context.new_page()
    page.goto(system.urls["intake"] + path, wait_until="load")
    if "/signin" in page.url:
        page.fill("#f-username", username)
        page.fill("#f-password", DEMO_PASSWORD)
        page.get_by_role("button", name="Đăng nhập").click()
        page.wait_for_load_state("load")
    assert page.url.startswith(system.urls["intake"]), page.url
    return page


def test_from_a_phone_registration_to_the_city(system, new_context, screenshots):
    intake = system.urls["intake"]
    unit = new_context(phone=True)
    phone = unit.new_page()

    # The district's information page, as linked from a commune's notice board.
    phone.goto(intake + "/d/787", wait_until="load")
    assert "Huyện Cần Giờ" in phone.locator("h1").inner_text()
    _no_horizontal_scroll(phone)
    phone.screenshot(path=str(screenshots / "intake-district-page-phone.png"), full_page=True)
    check_a11y(phone, "intake-district-page-phone")
    phone.get_by_role("link", name="Đăng ký đơn vị").first.click()
    phone.wait_for_load_state("load")
    assert phone.url == intake + "/d/787/register"

    # A first try with a wrong phone number: the error is said in Vietnamese, next to the field.
    name = f"Nhà sách Cần Thạnh {uuid.uuid4().hex[:4].upper()}"
    phone.fill("#f-unit_name", name)
    phone.select_option("#f-unit_type", label="Cửa hàng cung cấp dịch vụ thiết yếu")
    phone.select_option("#f-commune", label="Thị trấn Cần Thạnh")
    phone.fill("#f-address", "8 Đường Lương Văn Nho")
    phone.fill("#f-contact_name", "Phạm Thu Trang")
    phone.fill("#f-contact_phone", "12345")
    phone.fill("#f-contact_email", "nhasach@example.com")
    phone.get_by_role("button", name="Gửi đăng ký").click()
    phone.wait_for_load_state("load")
    assert "Số điện thoại không hợp lệ" in phone.locator("#f-contact_phone-error").inner_text()
    assert phone.input_value("#f-unit_name") == name
    _no_horizontal_scroll(phone)
    phone.screenshot(path=str(screenshots / "intake-register-error-phone.png"), full_page=True)
    check_a11y(phone, "intake-register-error-phone")
    phone.fill("#f-contact_phone", "0909 246 810")
    phone.get_by_role("button", name="Gửi đăng ký").click()
    phone.wait_for_load_state("load")
    assert "/status/DK" in phone.url
    status_url = phone.url.split("?")[0]
    reference = phone.locator("#reference").inner_text()
    assert phone.locator("#status-title").get_attribute("data-stage") == "submitted"
    assert "Đang chờ UBND phường/xã xem xét" in phone.locator("#status-title").inner_text()
    _no_horizontal_scroll(phone)
    phone.screenshot(path=str(screenshots / "intake-status-submitted-phone.png"), full_page=True)
    check_a11y(phone, "intake-status-submitted-phone")

    # The commune focal point accepts it and sends its list to the district.
    commune = new_context()
    console = _signed_in(commune, system, "ubnd.canthanh")
    console.fill("#f-q", reference)
    console.get_by_role("button", name="Lọc").click()
    console.wait_for_load_state("load")
    console.get_by_role("link", name=reference).click()
    console.wait_for_load_state("load")
    assert name in console.locator("h1").inner_text()
    console.screenshot(path=str(screenshots / "intake-review-commune.png"), full_page=True)
    check_a11y(console, "intake-review-commune")
    console.get_by_role("button", name="Duyệt").click()
    console.wait_for_load_state("load")
    assert "Đã duyệt đăng ký." in console.locator(".flash").inner_text()
    console.get_by_role("link", name="Gửi danh sách").click()
    console.wait_for_load_state("load")
    assert reference in console.locator("table").inner_text()
    console.get_by_role("button", name="Gửi 1 đăng ký này lên quận/huyện").click()
    console.wait_for_load_state("load")
    assert "Đã gửi danh sách" in console.locator(".flash").inner_text()
    assert commune.errors == [], commune.errors

    phone.goto(status_url, wait_until="load")
    assert phone.locator("#status-title").get_attribute("data-stage") == "sent"

    # The district forwards everything ready (this unit, and the demo's) to the city DIC.
    district = new_context()
    forward = _signed_in(district, system, "vhtt.cangio", "/forward")
    assert reference in forward.locator("table").first.inner_text()
    forward.screenshot(path=str(screenshots / "intake-forward-district.png"), full_page=True)
    check_a11y(forward, "intake-forward-district")
    forward.get_by_role("button", name="Chuyển các đăng ký đã chọn").click()
    forward.wait_for_load_state("load")
    assert "Đã chuyển danh sách lên Sở" in forward.locator(".flash").inner_text()
    assert reference in forward.locator("table").inner_text()
    progress = district.new_page()
    progress.goto(intake + "/progress", wait_until="load")
    progress.screenshot(path=str(screenshots / "intake-progress-district.png"), full_page=True)
    check_a11y(progress, "intake-progress-district")
    assert int(progress.locator("#stat-forwarded").inner_text()) >= 3
    assert district.errors == [], district.errors

    # The unit sees its status change.
    deadline = time.monotonic() + 10
    while True:
        phone.goto(status_url, wait_until="load")
        if phone.locator("#status-title").get_attribute("data-stage") == "forwarded":
            break
        assert time.monotonic() < deadline, phone.locator("#status-title").inner_text()
        time.sleep(0.3)
    assert "Đã chuyển Sở Thông tin và Truyền thông để cấp tài khoản" in phone.locator("#status-title").inner_text()
    assert "qua e-mail" in phone.locator("#status-explanation").inner_text()
    assert phone.locator(".timeline__step--done").count() == 4
    _no_horizontal_scroll(phone)
    phone.screenshot(path=str(screenshots / "intake-status-forwarded-phone.png"), full_page=True)
    check_a11y(phone, "intake-status-forwarded-phone")
    # The only failed load is the form answered 422 with its errors.
    assert [e for e in unit.errors if "status of 422" not in e] == [], unit.errors


def test_the_import_page_on_a_phone(system, new_context, screenshots):
    context = new_context(phone=True)
    page = _signed_in(context, system, "vhtt.cangio", "/imports")
    assert page.locator("h1").inner_text() == "Nhập danh sách"
    _no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "intake-imports-phone.png"), full_page=True)
    check_a11y(page, "intake-imports-phone")
    home = context.new_page()
    home.goto(system.urls["intake"] + "/", wait_until="load")
    assert home.locator("tbody tr").count() >= 8
    _no_horizontal_scroll(home)
    home.screenshot(path=str(screenshots / "intake-home-district-phone.png"), full_page=True)
    check_a11y(home, "intake-home-district-phone")
    assert context.errors == [], context.errors


def test_suspected_spam_is_invisible_on_the_form_and_discarded_from_the_console(system, new_context, screenshots):
    intake = system.urls["intake"]
    unit = new_context(phone=True)
    phone = unit.new_page()
    phone.goto(intake + "/d/787/register", wait_until="load")
    # The hidden field: not seen, not in the accessibility tree, never reached with the keyboard.
    extra = phone.locator("input[name=homepage]")
    assert extra.count() == 1
    box = extra.bounding_box()
    assert box is None or box["x"] + box["width"] <= 0, box
    assert phone.get_by_role("textbox", name="Để trống ô này").count() == 0
    phone.focus("#f-unit_name")
    reached = []
    for _ in range(40):
        phone.keyboard.press("Tab")
        reached.append(phone.evaluate("() => document.activeElement.name || document.activeElement.tagName"))
        if reached[-1] == "BUTTON":
            break
    assert reached[-1] == "BUTTON" and "homepage" not in reached and "contact_email" in reached, reached
    _no_horizontal_scroll(phone)
    phone.screenshot(path=str(screenshots / "intake-register-phone.png"), full_page=True)
    check_a11y(phone, "intake-register-phone")

    # A robot fills every field, the hidden one too: it gets the same answer as anyone.
    name = f"Cửa hàng Quảng Cáo {uuid.uuid4().hex[:4].upper()}"
    phone.fill("#f-unit_name", name)
    phone.select_option("#f-unit_type", label="Cửa hàng cung cấp dịch vụ thiết yếu")
    phone.select_option("#f-commune", label="Thị trấn Cần Thạnh")
    phone.fill("#f-address", "99 Đường Lương Văn Nho")
    phone.fill("#f-contact_name", "Trần Văn Bot")
    phone.fill("#f-contact_phone", "0909 000 111")
    phone.evaluate("() => { document.querySelector('input[name=homepage]').value = 'http://quangcao.example'; }")
    phone.get_by_role("button", name="Gửi đăng ký").click()
    phone.wait_for_load_state("load")
    assert "/status/DK" in phone.url
    reference = phone.locator("#reference").inner_text()
    assert unit.errors == [], unit.errors

    # The commune finds it under "Nghi ngờ spam", not in its queue, and discards it in one click.
    commune = new_context()
    console = _signed_in(commune, system, "ubnd.canthanh", "/?status=submitted")
    assert reference not in console.locator("main").inner_text()
    console.get_by_role("link", name="Nghi ngờ spam").first.click()
    console.wait_for_load_state("load")
    assert console.url == intake + "/spam"
    row = console.locator("tr.spam-row", has_text=reference)
    assert "Điền vào trường ẩn của biểu mẫu" in row.inner_text()
    assert row.locator("input[type=checkbox]").is_checked()
    console.screenshot(path=str(screenshots / "intake-spam-commune.png"), full_page=True)
    check_a11y(console, "intake-spam-commune")
    console.get_by_role("button", name="Loại bỏ các đăng ký đã chọn").click()
    console.wait_for_load_state("load")
    assert "Đã loại bỏ các đăng ký nghi ngờ spam" in console.locator(".flash").inner_text()
    assert reference not in console.locator("main").inner_text()
    assert commune.errors == [], commune.errors

    phone.reload(wait_until="load")
    assert phone.locator("#status-title").get_attribute("data-stage") == "returned"
