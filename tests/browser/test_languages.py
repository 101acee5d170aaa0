"""One language at a time (issue 18, item 2), in Chromium against ``khaibao up``.

In English: the landing page's cards and role names, every console's menu, headings,
labels and buttons, and the password page carry no Vietnamese (apart from the data: names
of units, areas and people). In Vietnamese: no English duplicate joined with " / ".
Screenshots (phone and desktop) go to test-results/browser/ and, when
``KHAIBAO_SHOTS_DIR`` is set, there too.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from libs.common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD

from .a11y import check_a11y
from .conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]

DIACRITICS = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹáàãéèíìóòõúùý]", re.I)
# "<Vietnamese> / <English>": a word with a Vietnamese letter, " / ", a capitalised English word.
JOINED = re.compile(r"\w*[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]\w*[.!]? / [A-Z][a-z]+")
# What the people using the system wrote (data, not interface text).
DATA = ["Tiếng Việt", *(name for _u, name, _r, _j in DEMO_ACCOUNTS), "Cần Thạnh", "Cần Giờ", "Hồ Chí Minh",
        "Phường", "Thị trấn", "Huyện", "Xã", "Quận"]
UI_TEXT = "nav, h1, h2, h3, th, label, button, .button, legend, dt, .card__title, .card__text, .flash"
COMMUNE_USER = "ubnd.canthanh"
CONSOLES = ("intake", "provisioning", "declaration", "notification", "reporting")


def shots_dirs(screenshots: Path) -> list[Path]:
    extra = os.environ.get("KHAIBAO_SHOTS_DIR")
    dirs = [screenshots, *([Path(extra)] if extra else [])]
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
    return dirs


def shoot(page, screenshots: Path, name: str) -> None:  # noqa: ANN001
    for directory in shots_dirs(screenshots):
        page.screenshot(path=str(directory / f"{name}.png"), full_page=True)
    check_a11y(page, name, viewports=("phone",) if name.endswith("phone") else ("desktop",))


def ui_texts(page) -> list[str]:  # noqa: ANN001
    texts = page.locator(UI_TEXT).all_inner_texts()
    out = []
    for text in texts:
        for data in DATA:
            text = text.replace(data, "")
        out.append(text)
    return out


def vietnamese_left(page) -> list[str]:  # noqa: ANN001
    return [t.strip()[:120] for t in ui_texts(page) if DIACRITICS.search(t)]


def sign_in(context, system, lang: str):  # noqa: ANN001, ANN201
    page = context.new_page()
    page.goto(system.urls["provisioning"] + f"/signin?lang={lang}", wait_until="load")
    page.fill("#f-username", COMMUNE_USER)
    page.fill("#f-password", DEMO_PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state("load")
    assert "/signin" not in page.url, page.url
    return page


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_landing_page_in_english(system, new_context, screenshots, phone):
    context = new_context(phone=phone)
    page = context.new_page()
    page.goto(system.landing_url + "/?lang=en", wait_until="load")
    assert page.locator("h1").inner_text() == "Electronic health declaration system"
    titles = page.locator(".card__title").all_inner_texts()
    assert "Registration intake" in titles and "Reports and statistics" in titles, titles
    body = page.locator("main").inner_text()
    assert "Commune focal point" in body and "Gate staff" in body, body[:500]
    assert vietnamese_left(page) == []
    shoot(page, screenshots, f"i18n-landing-en-{'phone' if phone else 'desktop'}")
    page.goto(system.landing_url + "/?lang=vi", wait_until="load")
    assert "Tiếp nhận đăng ký" in page.locator(".card__title").all_inner_texts()
    assert "Đầu mối UBND phường/xã" in page.locator("main").inner_text()
    assert not JOINED.search(page.locator("body").inner_text())
    shoot(page, screenshots, f"i18n-landing-vi-{'phone' if phone else 'desktop'}")


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_consoles_in_english_then_vietnamese(system, new_context, screenshots, phone):
    context = new_context(phone=phone)
    sign_in(context, system, "en")
    page = context.new_page()
    size = "phone" if phone else "desktop"
    for service in CONSOLES:
        page.goto(system.urls[service] + "/", wait_until="load")
        assert page.locator("html").get_attribute("lang") == "en"
        menu = page.locator("nav.site-nav").text_content()  # folded on a phone (a <details>)
        assert "Registration intake" in menu and "Reports and statistics" in menu, menu
        assert vietnamese_left(page) == [], (service, vietnamese_left(page))
        shoot(page, screenshots, f"i18n-{service}-en-{size}")
    page.goto(system.urls["provisioning"] + "/?lang=vi", wait_until="load")
    for service in CONSOLES:
        page.goto(system.urls[service] + "/", wait_until="load")
        assert page.locator("html").get_attribute("lang") == "vi"
        assert "Tiếp nhận đăng ký" in page.locator("nav.site-nav").text_content()
        visible = page.locator("body").inner_text()
        assert not JOINED.search(visible), (service, JOINED.search(visible).group(0))
        shoot(page, screenshots, f"i18n-{service}-vi-{size}")


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_password_page_speaks_one_language(system, new_context, screenshots, phone):
    context = new_context(phone=phone)
    size = "phone" if phone else "desktop"
    page = sign_in(context, system, "vi")
    page.goto(system.urls["provisioning"] + "/password", wait_until="load")
    page.fill("#f-current", DEMO_PASSWORD)
    page.fill("#f-new", "mot-mat-khau-moi-2026")
    page.fill("#f-confirm", "mot-mat-khau-khac-2026")
    page.locator("form.form button[type=submit]").click()
    page.wait_for_load_state("load")
    error = page.locator(".flash--error").inner_text()
    assert "Mật khẩu nhập lại không khớp" in error and "differ" not in error, error
    assert not JOINED.search(page.locator("body").inner_text())
    shoot(page, screenshots, f"i18n-password-vi-{size}")
    page.goto(system.urls["provisioning"] + "/password?lang=en", wait_until="load")
    page.fill("#f-current", DEMO_PASSWORD)
    page.fill("#f-new", "mot-mat-khau-moi-2026")
    page.fill("#f-confirm", "mot-mat-khau-khac-2026")
    page.locator("form.form button[type=submit]").click()
    page.wait_for_load_state("load")
    error = page.locator(".flash--error").inner_text()
    assert "The two new passwords differ" in error and not DIACRITICS.search(error), error
    assert page.locator("h1").inner_text() == "Change password"
    assert vietnamese_left(page) == [], vietnamese_left(page)
    shoot(page, screenshots, f"i18n-password-en-{size}")
