"""Issue 18.1 and 18.3 in Chromium against ``khaibao up``: what each person meets first.

* Menus: every demo role signs in; every link of its menu answers 200 for it, and every
  console page of the menu table that answers 200 for it is in its menu (the others answer
  403): the menu and the servers read the same access rules (libs/common/menu.py).
* Phone (390 x 844): the menu folds into one line, the page's task is in the first screen;
  the menu opens with its button (no script). On a desktop it is open, without the button.
* A visitor without a session at the declaration service's root lands on ``/v`` (type a
  venue code), not on the officials' sign-in; the visitor guide names that address.

Screenshots: test-results/browser/menu-*.png and visitor-root-*.png.
"""
from __future__ import annotations

import pytest

from libs.common.auth import Role
from libs.common.demo import DEMO_PASSWORD
from libs.common.menu import MENU

from .a11y import check_a11y
from .conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]

DEMO_USERS = {
    Role.CITY_DIC: "so.tttt",
    Role.DISTRICT_FOCAL: "vhtt.cangio",
    Role.COMMUNE_FOCAL: "ubnd.canthanh",
    Role.HEALTH_OFFICER: "ttyt.cangio",
    Role.UNIT_ADMIN: "donvi.chocanthanh",
    Role.GATE_STAFF: "cong.chocanthanh",
}
# Where each role starts its work (the page whose task must be on a phone's first screen).
TASK_PAGE = {Role.GATE_STAFF: ("declaration", "/"), Role.UNIT_ADMIN: ("reporting", "/unit"),
             Role.COMMUNE_FOCAL: ("intake", "/")}


def _signed_in(context, system, username: str):  # noqa: ANN001, ANN202
    page = context.new_page()
    page.goto(system.urls["provisioning"] + "/signin", wait_until="load")
    page.fill("#f-username", username)
    page.fill("#f-password", DEMO_PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state("load")
    assert "/signin" not in page.url, page.url
    return page


def _menu(page) -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all("nav.site-nav a.site-nav__link", "links => links.map(a => a.href)")


def _status(page, url: str) -> int:  # noqa: ANN001
    response = page.goto(url, wait_until="load")
    assert "/signin" not in page.url, f"{url} sent to the sign-in"
    return response.status


@pytest.mark.parametrize("role", list(DEMO_USERS), ids=str)
def test_each_role_sees_exactly_the_pages_it_may_open(system, new_context, screenshots, role):
    context = new_context()
    page = _signed_in(context, system, DEMO_USERS[role])
    page.goto(system.urls["provisioning"] + "/", wait_until="load")
    shown = _menu(page)
    assert shown, "no menu"
    page.screenshot(path=str(screenshots / f"menu-{role}-desktop.png"))
    # Every page the menu table could offer, asked as this role: 200 exactly for the shown ones.
    candidates = {system.urls[link.service] + link.path: link for link in MENU}
    assert set(shown) <= set(candidates), shown
    answers = {url: _status(page, url) for url in candidates}
    context.errors.clear()  # the refused pages were asked on purpose
    allowed = {url for url, status in answers.items() if status == 200}
    assert set(shown) == allowed, (role, answers, shown)
    assert all(status in (200, 403) for status in answers.values()), answers
    # The same menu on every console of the role.
    for url in shown:
        page.goto(url, wait_until="load")
        assert _menu(page) == shown, url
    assert context.errors == [], context.errors


@pytest.mark.parametrize("role", list(TASK_PAGE), ids=str)
def test_on_a_phone_the_task_comes_first_and_the_menu_folds(system, new_context, screenshots, role):
    context = new_context(phone=True)
    page = _signed_in(context, system, DEMO_USERS[role])
    service, path = TASK_PAGE[role]
    assert page.goto(system.urls[service] + path, wait_until="load").status == 200
    toggle = page.locator("nav.site-nav summary")
    links = page.locator("nav.site-nav a.site-nav__link")
    assert toggle.is_visible()
    assert links.count() > 0 and not links.first.is_visible()
    nav_box = page.locator("nav.site-nav").bounding_box()
    assert nav_box["height"] <= 60, nav_box
    heading = page.locator("main h1").bounding_box()
    assert heading["y"] + heading["height"] <= 844 * 0.6, heading  # the task's title high on the first screen
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 390, width
    page.screenshot(path=str(screenshots / f"menu-{role}-phone.png"))
    toggle.click()
    assert links.first.is_visible() and links.last.is_visible()
    page.screenshot(path=str(screenshots / f"menu-{role}-phone-open.png"))
    check_a11y(page, f"menu-{role}-open", viewports=("phone",))
    # On a desktop the menu is open and the button hidden.
    desktop = _signed_in(new_context(), system, DEMO_USERS[role])
    desktop.goto(system.urls[service] + path, wait_until="load")
    assert desktop.locator("nav.site-nav a.site-nav__link").first.is_visible()
    assert not desktop.locator("nav.site-nav summary").is_visible()


def test_a_visitor_at_the_declaration_root_lands_on_the_code_page(system, new_context, screenshots):
    page = new_context(phone=True).new_page()
    page.goto(system.urls["declaration"] + "/", wait_until="load")
    assert page.url == system.urls["declaration"] + "/v", page.url
    assert page.locator("#f-code").is_visible()
    page.screenshot(path=str(screenshots / "visitor-root-phone.png"))
    # The visitor guide gives the same short address, and it opens the code page.
    guide = new_context(phone=True).new_page()
    guide.goto(system.urls["provisioning"] + "/help/visitor", wait_until="load")
    address = system.urls["declaration"].removeprefix("http://") + "/v"
    link = guide.get_by_role("link", name=address)
    assert link.is_visible(), guide.locator("main").inner_text()
    guide.screenshot(path=str(screenshots / "visitor-guide-phone.png"))
    link.click()
    guide.wait_for_load_state("load")
    assert guide.url == system.urls["declaration"] + "/v"
    # An official who lands there signs in from the page and reaches the declaration console.
    official = new_context().new_page()
    official.goto(system.urls["declaration"] + "/", wait_until="load")
    official.click("#officials-signin")
    official.wait_for_load_state("load")
    official.fill("#f-username", DEMO_USERS[Role.GATE_STAFF])
    official.fill("#f-password", DEMO_PASSWORD)
    official.get_by_role("button", name="Đăng nhập").click()
    official.wait_for_load_state("load")
    assert official.url == system.urls["declaration"] + "/", official.url
    # Signed in, the root is the console.
    assert official.goto(system.urls["declaration"] + "/", wait_until="load").status == 200
    assert official.url == system.urls["declaration"] + "/"


def test_a_unit_sees_its_gates_today_and_this_week_first(system, new_context, screenshots):
    """``/unit`` on a phone: the unit's own gates, each with today's and the last seven
    days' declarations and reds, is the first thing under the title; nothing of others."""
    import time

    from .declaration_support import demo_venues, fill_person

    venues = demo_venues(system)
    visitor = new_context(phone=True).new_page()
    visitor.goto(f"{system.urls['declaration']}/v/{venues[0]['code']}", wait_until="load")
    fill_person(visitor, 0, name="Trần Văn Bình", id_number="079190001111", birth="01/01/1990", gender=1,
                phone="0908 222 333")
    visitor.check("#f-consent")
    visitor.click("#send")
    visitor.wait_for_url("**/done/**")

    page = _signed_in(new_context(phone=True), system, DEMO_USERS[Role.UNIT_ADMIN])
    page.goto(system.urls["reporting"] + "/unit", wait_until="load")
    glance = page.locator("#unit-glance")
    deadline = time.monotonic() + 60
    while glance.count() == 0 or glance.locator(f"tr[data-code='{venues[0]['code']}'] .glance-today").inner_text() \
            == "0":
        assert time.monotonic() < deadline, "today's declaration not on the unit's page"
        time.sleep(0.5)
        page.reload(wait_until="load")
    codes = sorted(glance.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.code)"))
    assert codes == sorted(v["code"] for v in venues), codes
    box = glance.bounding_box()
    assert box["y"] < 844, box  # it starts on the first screen
    row = glance.locator(f"tr[data-code='{venues[0]['code']}']")
    assert int(row.locator(".glance-week").inner_text()) >= int(row.locator(".glance-today").inner_text()) >= 1
    page.screenshot(path=str(screenshots / "unit-glance-phone.png"))
    check_a11y(page, "unit-glance")
    desktop = _signed_in(new_context(), system, DEMO_USERS[Role.UNIT_ADMIN])
    desktop.goto(system.urls["reporting"] + "/unit", wait_until="load")
    desktop.screenshot(path=str(screenshots / "unit-glance-desktop.png"), full_page=True)
