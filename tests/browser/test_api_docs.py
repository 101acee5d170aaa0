"""Swagger UI at /api/docs, self-hosted: in Chromium, under the services' strict CSP, the page
renders the operations of the service's OpenAPI document, loads nothing from another
origin, reports no CSP violation and passes axe-core's WCAG 2.1 A/AA rules. One service (notification) served by uvicorn.
Screenshot: test-results/browser/api-docs.png."""
from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.services.conftest import build_settings, create_app, free_port_block, make_keys

from .a11y import check_a11y
from .conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):  # noqa: ANN201
    import uvicorn

    keys = make_keys(tmp_path_factory.mktemp("apidocs") / "data")
    app = create_app("notification", build_settings("notification", keys))
    port = free_port_block(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def test_swagger_ui_renders_the_operations_under_the_csp(served, new_context, screenshots):
    answer = httpx.get(served + "/api/docs", timeout=10)
    assert answer.status_code == 200
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    assert "<script>" not in answer.text and "cdn" not in answer.text.lower()

    context = new_context()
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.on("pageerror", lambda error: context.errors.append(f"page error: {error}"))
    page.goto(served + "/api/docs", wait_until="load")
    page.locator(".opblock").first.wait_for(timeout=20000)
    operations = page.locator(".opblock .opblock-summary-path")
    paths = {operations.nth(i).inner_text().replace("\u200b", "") for i in range(operations.count())}
    assert "/api/alerts" in paths, sorted(paths)
    assert len(paths) >= 5
    assert "khaibao notification" in page.locator(".information-container .title").inner_text()
    # An operation opens and shows its parameters and responses.
    page.locator(".opblock-summary").first.click()
    page.locator(".opblock-body .responses-wrapper").first.wait_for(timeout=10000)
    page.screenshot(path=str(screenshots / "api-docs.png"), full_page=False)
    check_a11y(page, "api-docs")
    assert context.errors == [], context.errors  # no CSP violation, no failed load, no script error
    origin = urlsplit(served).netloc
    assert all(urlsplit(url).netloc == origin for url in requested if url.startswith("http")), requested
