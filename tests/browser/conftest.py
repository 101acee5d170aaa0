"""The whole system (``khaibao up`` on free ports) driven by Debian's Chromium.

``system`` runs ``khaibao up`` once per module; ``chromium`` is a module-scoped browser of
our own (sync Playwright, so the tests are plain sync functions, outside any asyncio
loop). ``browser_type_launch_args`` points pytest-playwright's own fixtures (``page``...)
at the same Chromium, for tests that prefer them.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.common.demo import DEMO_PASSWORD

from tests.services.conftest import REPO_ROOT, UpProcess, khaibao_up

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
DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = REPO_ROOT / "test-results" / "browser"


def unit_email() -> str:
    """A contact e-mail of its own for each unit a test registers: intake refuses more than a
    few registrations waiting under one e-mail (suspected spam)."""
    return f"donvi.{uuid.uuid4().hex[:10]}@example.vn"


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's hook
    """The axe-core results of the session (tests/browser/a11y.py), one line per page and size."""
    from .a11y import SUMMARY

    if SUMMARY:
        terminalreporter.section("axe-core: WCAG 2.1 A/AA")
        for line in SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):  # noqa: ANN001 - pytest-playwright's
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS,
            "headless": True}


@pytest.fixture(scope="module")
def system(request, tmp_path_factory) -> Iterator[UpProcess]:
    """``khaibao up`` for the module; without the demo week, unless the module sets
    ``DEMO_WEEK = True`` (test_demo.py: the week's dashboards and mailbox)."""
    base = tmp_path_factory.mktemp("khaibao-up")
    with khaibao_up(base / "var", base / "up.log", timeout=90,
                    demo_week=getattr(request.module, "DEMO_WEEK", False)) as up:
        yield up


@pytest.fixture(scope="module")
def chromium():  # noqa: ANN201
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def new_context(chromium):  # noqa: ANN001, ANN201
    """``new_context(phone=False)``: a fresh browser profile (no cookies), closed after the test;
    console errors (CSP violations, failed loads) are collected in ``context.errors``."""
    contexts = []

    def factory(phone: bool = False):  # noqa: ANN202
        options = ({"viewport": PHONE, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
                   if phone else {"viewport": DESKTOP})
        context = chromium.new_context(locale="vi-VN", **options)
        context.errors = []
        context.on("page", lambda page: page.on(
            "console", lambda msg: context.errors.append(msg.text) if msg.type == "error" else None))
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        context.close()


def sign_in_at(context, url: str, username: str):  # noqa: ANN001, ANN201
    """A new page of ``context`` at ``url``, signed in as a demo account if the console asks."""
    page = context.new_page()
    page.goto(url, wait_until="load")
    if page.url.endswith("/v") and page.locator("#officials-signin").count():
        # Declaration's root sends a visitor to the code page, which links the officials' sign-in.
        page.click("#officials-signin")
        page.wait_for_load_state("load")
    if "/signin" in page.url:
        page.fill("#f-username", username)
        page.fill("#f-password", DEMO_PASSWORD)
        page.get_by_role("button", name="Đăng nhập").click()
        page.wait_for_load_state("load")
    assert page.url.startswith(url), page.url
    return page
