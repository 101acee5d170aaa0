"""A visitor declares on a phone (390 x 844), against ``khaibao up`` with its demo venues.

Declare and see the QR code (decoded from the screen, then verified with the public key);
come back and find the form prefilled; declare for a family; and the same form with
JavaScript off. Every page shown passes axe-core's WCAG 2.1 A/AA rules at phone and desktop
size (tests/browser/a11y.py); the form is filled and sent with the keyboard alone, focus
always visible, a refused form's errors announced and linked to their fields.
Screenshots go to test-results/browser/.
"""
from __future__ import annotations

import io

import httpx
import pytest
import zxingcpp
from PIL import Image

from services.declaration.passes import load_pass_keys

from .a11y import check_a11y
from .conftest import CHROMIUM
from .declaration_support import demo_venues, fill_person

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]


@pytest.fixture(scope="module")
def venue(system) -> dict:  # noqa: ANN001
    return demo_venues(system)[0]


def decode_qr(element) -> str:  # noqa: ANN001
    image = Image.open(io.BytesIO(element.screenshot()))
    found = zxingcpp.read_barcodes(image)
    assert found, "no QR code on the screen"
    return found[0].text


def test_declare_see_the_qr_and_come_back_prefilled(system, venue, new_context, screenshots):
    context = new_context(phone=True)
    page = context.new_page()
    page.goto(f"{system.urls['declaration']}/v/{venue['code']}", wait_until="load")
    assert page.locator("h1").inner_text() == "Chợ Cần Thạnh"
    assert page.locator("html").get_attribute("class") == "js"
    page.screenshot(path=str(screenshots / "declaration-form-phone.png"))
    check_a11y(page, "declaration/form")
    fill_person(page, 0, name="Nguyễn Văn An", id_number="079099012345", birth="01/02/1990", gender=1,
                phone="0909 123 456")
    page.check("#f-consent")
    page.click("#send")
    page.wait_for_url("**/done/**")
    assert page.locator("h1").inner_text() == "Đã nhận tờ khai"
    assert page.locator(".pass__colour").inner_text() == "XANH"
    text = decode_qr(page.locator(".pass__qr img"))
    keys = load_pass_keys(None, [], data_dir=system.data_dir, create=False)
    found = keys.verify(text)
    assert found.outcome == "valid" and found.result == "green"
    assert "079099012345" not in text and "NGUY" not in text  # no personal data in clear
    page.screenshot(path=str(screenshots / "declaration-result-phone.png"), full_page=True)
    check_a11y(page, "declaration/result")

    # The visitor comes back the next morning: the form is filled from this phone.
    page.goto(f"{system.urls['declaration']}/v/{venue['code']}", wait_until="load")
    page.wait_for_selector("#declare-form[data-restored='1']")
    assert page.input_value("#f-p0-full_name") == "Nguyễn Văn An"
    assert page.input_value("#f-p0-id_number") == "079099012345"
    assert page.input_value("#f-p0-phone") == "0909 123 456"
    assert page.input_value("#f-p0-commune_code") == "27664"
    assert page.is_checked("#f-p0-gender-1")
    assert not page.is_checked("#f-p0-symptoms-fever") and not page.is_checked("#f-consent")
    assert page.locator("#remembered").is_visible() and page.locator("#last-pass").is_visible()
    page.screenshot(path=str(screenshots / "declaration-return-phone.png"))
    check_a11y(page, "declaration/form-remembered")
    # Only confirming: the consent, and send.
    page.check("#f-consent")
    page.click("#send")
    page.wait_for_url("**/done/**")
    assert page.locator(".pass").count() == 1
    # "Forget my details" empties the phone's memory.
    page.goto(f"{system.urls['declaration']}/v/{venue['code']}", wait_until="load")
    page.click("#forget")
    page.wait_for_load_state("load")
    assert page.input_value("#f-p0-full_name") == ""
    assert context.errors == [], context.errors


def test_a_family_declares_together(system, venue, new_context, screenshots):
    context = new_context(phone=True)
    page = context.new_page()
    page.goto(f"{system.urls['declaration']}/v/{venue['code']}", wait_until="load")
    fill_person(page, 0, name="Trần Văn Bình", id_number="079088012345", birth="1988", gender=1, phone="0912345678")
    url = page.url
    page.click("#add-person")
    page.click("#add-person")
    assert page.url == url and page.locator("#people .person").count() == 3  # added in place
    assert page.input_value("#count") == "3"
    fill_person(page, 1, name="Trần Thị Lan", id_number="079190012345", birth="12/12/1990", gender=2, address=False)
    fill_person(page, 2, name="Trần Minh Khôi", birth="2017", gender=1, address=False)
    page.check("#f-p2-symptoms-fever")
    page.check("#f-p2-symptoms-cough")
    # Remove the second and add her back: numbering stays consistent.
    page.locator("#person-1 button[value='remove:1']").click()
    assert page.locator("#people .person").count() == 2 and page.input_value("#f-p1-full_name") == "Trần Minh Khôi"
    page.click("#add-person")
    fill_person(page, 2, name="Trần Thị Lan", id_number="079190012345", birth="12/12/1990", gender=2, address=False)
    page.screenshot(path=str(screenshots / "declaration-family-phone.png"), full_page=True)
    check_a11y(page, "declaration/form-family")
    page.check("#f-consent")
    page.click("#send")
    page.wait_for_url("**/done/**")
    names = page.locator(".pass__name").all_inner_texts()
    colours = page.locator(".pass__colour").all_inner_texts()
    assert names == ["Trần Văn Bình", "Trần Minh Khôi", "Trần Thị Lan"] and colours == ["XANH", "ĐỎ", "XANH"]
    assert "Không vào" in page.locator(".pass--red .pass__action").inner_text()
    assert "1900 9095" in page.locator(".pass--red .pass__advice").inner_text()
    page.screenshot(path=str(screenshots / "declaration-family-result-phone.png"), full_page=True)
    check_a11y(page, "declaration/result-family")
    assert context.errors == [], context.errors


def test_the_form_works_without_javascript(system, venue, chromium, screenshots):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False,
                                   locale="vi-VN", is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{system.urls['declaration']}/v/{venue['code']}", wait_until="load")
        page.fill("#f-p0-full_name", "Phạm Thu Hà")
        page.fill("#f-p0-id_number", "079195012345")
        page.fill("#f-p0-birth", "05/05/1995")
        page.check("#f-p0-gender-2")
        page.fill("#f-p0-phone", "0987654321")
        # Narrow the pickers with a round trip, as a phone without JavaScript does.
        page.select_option("#f-p0-province_code", "1")
        page.locator("button[value='refresh']").first.click()
        page.wait_for_load_state("load")
        page.select_option("#f-p0-district_code", "1")
        page.locator("button[value='refresh']").nth(1).click()
        page.wait_for_load_state("load")
        page.select_option("#f-p0-commune_code", "1")
        page.fill("#f-p0-street", "Số 1 Phó Đức Chính")
        assert page.input_value("#f-p0-full_name") == "Phạm Thu Hà"  # kept across the round trips
        page.click("#add-person")
        page.wait_for_load_state("load")
        assert page.locator("#people .person").count() == 2
        page.fill("#f-p1-full_name", "Phạm Gia Huy")
        page.fill("#f-p1-birth", "2019")
        page.check("#f-p1-gender-1")
        page.click("#send")  # the consent is missing
        page.wait_for_load_state("load")
        assert "Vui lòng đánh dấu ô xác nhận" in page.locator(".error-summary").inner_text()
        page.check("#f-consent")
        page.click("#send")
        page.wait_for_url("**/done/**")
        assert page.locator(".pass__name").all_inner_texts() == ["Phạm Thu Hà", "Phạm Gia Huy"]
        page.screenshot(path=str(screenshots / "declaration-nojs-result-phone.png"), full_page=True)
        # English on request.
        page.goto(f"{system.urls['declaration']}/v/{venue['code']}?lang=en", wait_until="load")
        assert page.locator("#send").inner_text() == "Send the declaration"
    finally:
        context.close()


def test_security_headers_of_the_public_page(system, venue):
    response = httpx.get(f"{system.urls['declaration']}/v/{venue['code']}", timeout=10)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in response.text and " style=" not in response.text and " onclick" not in response.text


def test_the_code_page_and_an_unknown_venue_pass_axe(system, new_context, screenshots):
    """/v (the code typed from the poster) and the page of a code that names no venue."""
    page = new_context(phone=True).new_page()
    page.goto(f"{system.urls['declaration']}/v", wait_until="load")
    check_a11y(page, "declaration/enter-code")
    page.goto(f"{system.urls['declaration']}/v/ZZZZZZ", wait_until="load")
    check_a11y(page, "declaration/unknown-venue")


# --- keyboard only ---------------------------------------------------------------------------

FOCUS_STYLE = """() => {
  const e = document.activeElement, s = getComputedStyle(e);
  return {id: e.id, tag: e.tagName.toLowerCase(), name: e.getAttribute("name"), cls: e.className,
          href: e.getAttribute("href"), outline: s.outlineStyle, outlineWidth: s.outlineWidth,
          outlineColor: s.outlineColor, shadow: s.boxShadow};
}"""


def focus_of(page) -> dict:  # noqa: ANN001
    return page.evaluate(FOCUS_STYLE)


def assert_focus_visible(focus: dict) -> None:
    """A visible focus indicator: an outline that is drawn (style, width, not transparent)
    or a box shadow."""
    outline = (focus["outline"] != "none" and focus["outlineWidth"] not in ("0px", "")
               and focus["outlineColor"] not in ("transparent", "rgba(0, 0, 0, 0)"))
    assert outline or focus["shadow"] != "none", f"focus not visible on {focus}"


def tab_to(page, selector: str, *, backwards: bool = False, limit: int = 150) -> dict:  # noqa: ANN001
    """Press Tab (Shift+Tab) until ``selector`` has the focus; every element the focus passes
    shows it."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focus = focus_of(page)
        if focus["tag"] != "body":
            assert_focus_visible(focus)
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return focus
    raise AssertionError(f"{selector} not reached with the keyboard")


def choose_with_arrows(page, value: str, limit: int = 80) -> None:  # noqa: ANN001
    """On the focused (closed) select, ArrowDown until ``value`` is chosen."""
    for _ in range(limit):
        if page.evaluate("() => document.activeElement.value") == value:
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"option {value} not reached with the arrow keys")


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_form_is_completed_and_sent_with_the_keyboard_alone(system, venue, new_context, screenshots, size):
    context = new_context(phone=size == "phone")
    page = context.new_page()
    page.goto(f"{system.urls['declaration']}/v/{venue['code']}", wait_until="load")

    # The first Tab shows the skip link; Enter jumps over the header into the page.
    page.keyboard.press("Tab")
    focus = focus_of(page)
    assert "skip-link" in focus["cls"], focus
    assert_focus_visible(focus)
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # moved into view
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"

    tab_to(page, "#f-p0-full_name")
    page.keyboard.type("Lê Thị Mai")
    tab_to(page, "#f-p0-id_number")
    page.keyboard.type("079196012345")
    tab_to(page, "#f-p0-birth")
    page.keyboard.type("09/09/1996")
    # Into the gender group: the first radio; the arrow moves to and ticks "Nữ".
    tab_to(page, "input[name='p0.gender']")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    assert page.is_checked("#f-p0-gender-2") and not page.is_checked("#f-p0-gender-1")
    tab_to(page, "#f-p0-phone")
    page.keyboard.type("0903111222")
    tab_to(page, "#f-p0-district_code")
    choose_with_arrows(page, "787")
    page.wait_for_function("() => document.querySelector('#f-p0-commune_code').options.length > 1")
    tab_to(page, "#f-p0-commune_code")
    choose_with_arrows(page, "27664")
    tab_to(page, "#f-p0-street")
    page.keyboard.type("5 Duyên Hải")
    # A sign ticked with Space.
    tab_to(page, "#f-p0-symptoms-cough")
    page.keyboard.press("Space")
    assert page.is_checked("#f-p0-symptoms-cough")

    # Sent without the consent: refused, the summary takes the focus and is read out.
    tab_to(page, "#send")
    page.keyboard.press("Shift+Tab")
    assert focus_of(page)["id"] == "f-consent"  # the box just before the button
    page.keyboard.press("Tab")
    with page.expect_navigation(wait_until="load") as refused:
        page.keyboard.press("Enter")
    assert refused.value.status == 422
    summary = page.locator(".error-summary")
    assert summary.get_attribute("role") == "alert"
    page.wait_for_function("() => document.activeElement.classList.contains('error-summary')")
    assert_focus_visible(focus_of(page))
    assert "Vui lòng đánh dấu ô xác nhận" in summary.inner_text()
    # The field says so too, linked to its message.
    consent = page.locator("#f-consent")
    assert consent.get_attribute("aria-invalid") == "true"
    described = consent.get_attribute("aria-describedby").split()
    assert any("Vui lòng đánh dấu ô xác nhận" in page.locator(f"#{d}").inner_text() for d in described)
    # What was typed is kept.
    assert page.input_value("#f-p0-full_name") == "Lê Thị Mai" and page.is_checked("#f-p0-symptoms-cough")
    page.screenshot(path=str(screenshots / f"declaration-keyboard-refused-{size}.png"), full_page=False)
    check_a11y(page, "declaration/form-refused")

    # The summary's link leads to the box: Tab onto it, Enter, Space ticks it, Tab, Enter sends.
    link = tab_to(page, ".error-summary a")
    assert link["href"] == "#f-consent"
    page.keyboard.press("Enter")
    assert focus_of(page)["id"] == "f-consent"
    assert_focus_visible(focus_of(page))
    page.keyboard.press("Space")
    assert page.is_checked("#f-consent")
    tab_to(page, "#send")
    with page.expect_navigation(wait_until="load"):
        page.keyboard.press("Enter")
    page.wait_for_url("**/done/**")
    assert page.locator("h1").inner_text() == "Đã nhận tờ khai"
    assert page.locator(".pass__name").all_inner_texts() == ["Lê Thị Mai"]
    page.screenshot(path=str(screenshots / f"declaration-keyboard-result-{size}.png"), full_page=False)
    assert context.errors == [e for e in context.errors if "status of 422" in e], context.errors
