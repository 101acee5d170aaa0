"""The pages in a real browser (Debian's Chromium) at a phone's size."""
from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from .conftest import CONSOLE_LINKS, DEMO_ACCOUNTS, PUBLIC_LINK, build_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a background thread."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-ui-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield instance
        finally:
            instance.close()


def _phone_page(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
    return context, context.new_page()


def _check_phone_layout(page) -> None:
    no_horizontal_scroll = page.evaluate(
        "() => document.scrollingElement.scrollWidth <= window.innerWidth"
    )
    assert no_horizontal_scroll, page.evaluate(
        "() => [document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    # the stylesheet was applied (the header is the dark teal of the brand)
    header_bg = page.evaluate(
        "() => getComputedStyle(document.querySelector('.site-header')).backgroundColor"
    )
    assert header_bg == "rgb(11, 74, 90)"


def test_landing_on_a_phone(browser, tmp_path: Path):
    from libs.common.ui.landing import create_landing_app

    app = create_landing_app([*CONSOLE_LINKS, PUBLIC_LINK], DEMO_ACCOUNTS)
    errors: list[str] = []
    with serve(app) as base_url:
        context, page = _phone_page(browser)
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        try:
            response = page.goto(f"{base_url}/", wait_until="load")
            assert response is not None and response.ok
            assert page.locator("h1").first.inner_text() == "Hệ thống khai báo y tế điện tử"
            assert page.locator(".card--link").count() == 5
            _check_phone_layout(page)
            shot = tmp_path / "landing-phone.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            # the language switch works without JavaScript
            page.get_by_role("link", name="English").click()
            page.wait_for_load_state("load")
            assert page.locator("h2", has_text="Consoles for officials").count() == 1
            assert any(c["name"] == "khaibao_lang" and c["value"] == "en" for c in context.cookies())
            _check_phone_layout(page)
            page.screenshot(path=str(tmp_path / "landing-phone-en.png"), full_page=True)
        finally:
            context.close()
    assert errors == []  # no CSP or loading error in the console
    _keep(tmp_path)


def test_console_and_public_pages_on_a_phone(browser, tmp_path: Path):
    with serve(build_app()) as base_url:
        context, page = _phone_page(browser)
        try:
            for name, path in (("console", "/console"), ("public", "/public"), ("error", "/nowhere")):
                page.goto(f"{base_url}{path}", wait_until="load")
                _check_phone_layout(page)
                page.screenshot(path=str(tmp_path / f"{name}-phone.png"), full_page=True)
            # a desktop-sized look at the console too
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(f"{base_url}/console", wait_until="load")
            page.screenshot(path=str(tmp_path / "console-desktop.png"), full_page=True)
        finally:
            context.close()
    _keep(tmp_path)


def _keep(tmp_path: Path) -> None:
    """Copy the screenshots to test-results/ (ignored by git) for a human to look at."""
    target = Path(__file__).resolve().parents[4] / "test-results" / "ui-screenshots"
    with contextlib.suppress(OSError):
        target.mkdir(parents=True, exist_ok=True)
        for shot in tmp_path.glob("*.png"):
            shutil.copy2(shot, target / shot.name)
