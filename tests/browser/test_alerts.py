"""A visitor declares fever at a venue; the district health officer's alert inbox shows the
alert appear without reloading; the officer opens it and acknowledges it; the unit sees
it acknowledged. Against ``khaibao up`` with its demo data, in Debian's Chromium.
Screenshots go to test-results/browser/ (alerts-*.png).
"""
from __future__ import annotations

import pytest


from .a11y import check_a11y
from .conftest import CHROMIUM, sign_in_at
from .declaration_support import demo_venues, fill_person

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]

HEALTH_OFFICER = "ttyt.cangio"
UNIT_ADMIN = "donvi.chocanthanh"



def test_a_fever_declaration_appears_in_the_health_officers_inbox(system, new_context, screenshots):
    venue = demo_venues(system)[0]
    officer_context = new_context()
    inbox = sign_in_at(officer_context, system.urls["notification"] + "/alerts", HEALTH_OFFICER)
    assert inbox.locator("h1").inner_text() == "Cảnh báo ca nghi ngờ"
    before = inbox.locator("#alerts-body tr.alert-row").count()
    inbox.screenshot(path=str(screenshots / "alerts-inbox-before.png"), full_page=True)
    check_a11y(inbox, "alerts-inbox-before")

    # A visitor declares fever and cough at the venue, on a phone.
    visitor = new_context(phone=True).new_page()
    visitor.goto(f"{system.urls['declaration']}/v/{venue['code']}", wait_until="load")
    fill_person(visitor, 0, name="Phạm Thị Hồng", id_number="079190004321", birth="12/03/1990", gender=2,
                phone="0908 765 432")
    visitor.check("#f-p0-symptoms-fever")
    visitor.check("#f-p0-symptoms-cough")
    visitor.check("#f-consent")
    visitor.click("#send")
    visitor.wait_for_url("**/done/**")
    assert visitor.locator(".pass__colour").inner_text() == "ĐỎ"

    # The alert appears in the open inbox by itself (no reload).
    url_before = inbox.url
    inbox.wait_for_function(
        f"() => document.querySelectorAll('#alerts-body tr.alert-row').length > {before}", timeout=15000)
    assert inbox.url == url_before
    row = inbox.locator("#alerts-body tr.alert-row").first
    assert venue["name"] in row.inner_text() and "Mới" in row.inner_text()
    assert "Có cảnh báo mới" in inbox.locator("#live-status").inner_text()
    inbox.screenshot(path=str(screenshots / "alerts-inbox-live.png"), full_page=True)
    check_a11y(inbox, "alerts-inbox-live")

    row.locator("a").click()
    inbox.wait_for_load_state("load")
    person = inbox.locator("#person")
    details = person.inner_text()
    assert "phạm thị hồng" in details.lower() and "0908765432" in details.replace(" ", ""), details
    inbox.screenshot(path=str(screenshots / "alerts-detail.png"), full_page=True)
    check_a11y(inbox, "alerts-detail")
    inbox.click("#ack")
    inbox.wait_for_load_state("load")
    assert "Đã xác nhận" in inbox.locator("#alert-status").inner_text()
    assert "Đã xác nhận tiếp nhận cảnh báo" in inbox.content()
    assert "/alerts/" in inbox.url and "Phạm" not in inbox.url and "0908" not in inbox.url
    inbox.screenshot(path=str(screenshots / "alerts-acknowledged.png"), full_page=True)
    check_a11y(inbox, "alerts-acknowledged")

    # The unit that raised it sees that it was acknowledged, with initials only.
    unit = sign_in_at(new_context(), system.urls["notification"] + "/alerts/unit", UNIT_ADMIN)
    table = unit.locator("#unit-alerts").inner_text()
    assert "P.T.H." in table and "Đã xác nhận" in table and "Phạm" not in table
    unit.screenshot(path=str(screenshots / "alerts-unit-status.png"), full_page=True)
    check_a11y(unit, "alerts-unit-status")
    assert not [e for e in officer_context.errors if "Content Security Policy" in e]
