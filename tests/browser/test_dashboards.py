"""Dashboards in Chromium on ``khaibao up``: the district sees its communes only, the
commune itself only (on a phone), another area is refused; the district makes its
deployment report, downloads the .xlsx and the PDF and both open with the numbers."""
from __future__ import annotations

import io
import time

import httpx
import pypdfium2 as pdfium
import pytest
from openpyxl import load_workbook

from tests.services.conftest import registration

from .a11y import check_a11y
from .conftest import CHROMIUM, unit_email
from .test_consoles import COMMUNE_USER, DISTRICT_USER, _no_horizontal_scroll, _open_signed_in, _reload_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]
CAN_GIO_COMMUNES = 7


def _register(system, commune_code: str, name: str) -> None:
    response = httpx.post(system.urls["intake"] + "/api/registrations",
                          json=registration(commune_code, "market", name, contact_email=unit_email()), timeout=10)
    assert response.status_code == 201, response.text


def _cell(page, path: str, step: str) -> int:
    cell = page.locator(f'#funnel-table tr[data-path="{path}"] td[data-step="{step}"]')
    return int(cell.inner_text()) if cell.count() else -1


@pytest.fixture(scope="module")
def registered(system):
    _register(system, "27664", "Chợ Thử Cần Thạnh")
    _register(system, "27667", "Chợ Thử Bình Khánh")
    _register(system, "26740", "Chợ Thử Bến Nghé")  # Quận 1: another district
    return system


def test_district_dashboard_sees_its_communes_only(registered, new_context, screenshots):
    system = registered
    context = new_context()
    page = _open_signed_in(context, system, "reporting", DISTRICT_USER)
    _reload_until(page, lambda p: _cell(p, "79/787/27667", "submitted") >= 1, "Bình Khánh's registration")
    assert page.locator("h1").inner_text() == "Bảng số liệu"
    rows = page.locator("#funnel-table tbody tr")
    assert rows.count() == CAN_GIO_COMMUNES
    paths = [rows.nth(i).get_attribute("data-path") for i in range(rows.count())]
    assert all(p.startswith("79/787/") for p in paths)
    assert "Bến Nghé" not in page.locator("main").inner_text()
    assert page.locator("svg.chart").count() >= 4  # funnel, areas, per day, per hour
    assert page.locator("svg.chart rect.chart__bar").first.is_visible()
    page.screenshot(path=str(screenshots / "dashboard-district.png"), full_page=True)
    check_a11y(page, "dashboard-district")

    # Drill down to a commune through its link, then ask for another district: refused.
    page.locator('#funnel-table tr[data-path="79/787/27664"] a').click()
    page.wait_for_load_state("load")
    assert page.locator("#funnel-table tbody tr").count() == 1
    assert page.locator("#area-label").inner_text() == "Thị trấn Cần Thạnh, Huyện Cần Giờ"
    assert context.errors == [], context.errors  # no CSP violation, no failed load
    refused = page.goto(system.urls["reporting"] + "/?area=79/760", wait_until="load")
    assert refused.status == 403
    assert "ngoài phạm vi quản lý" in page.locator("main").inner_text()


def test_commune_dashboard_on_a_phone(registered, new_context, screenshots):
    system = registered
    context = new_context(phone=True)
    page = _open_signed_in(context, system, "reporting", COMMUNE_USER)
    _reload_until(page, lambda p: _cell(p, "79/787/27664", "submitted") >= 1, "Cần Thạnh's registration")
    rows = page.locator("#funnel-table tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-path") == "79/787/27664"
    text = page.locator("main").inner_text()
    assert "Bình Khánh" not in text and "Bến Nghé" not in text
    _no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "dashboard-commune-phone.png"), full_page=True)
    check_a11y(page, "dashboard-commune-phone")
    assert context.errors == [], context.errors
    # The area filter offers nothing outside the commune; typing another one is refused.
    assert page.goto(system.urls["reporting"] + "/?area=79/787/27667", wait_until="load").status == 403


def test_deployment_report_downloaded_and_opened(registered, new_context, screenshots, tmp_path):
    system = registered
    context = new_context()
    page = _open_signed_in(context, system, "reporting", DISTRICT_USER)
    _reload_until(page, lambda p: _cell(p, "79/787/27667", "submitted") >= 1, "the registrations")
    page.get_by_role("link", name="Báo cáo triển khai").click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == "Báo cáo triển khai"
    page.get_by_role("button", name="Lập báo cáo và gửi lên Thành phố").click()
    page.wait_for_load_state("load")
    assert "Đã yêu cầu lập báo cáo" in page.locator("main").inner_text()
    deadline = time.monotonic() + 60
    while page.locator("#reports-table a.download").count() < 2:  # the page refreshes itself every 3 s
        assert time.monotonic() < deadline, "the report was not made in time"
        page.wait_for_timeout(500)
    assert "Đã xong" in page.locator("#reports-table tbody tr").first.inner_text()
    page.screenshot(path=str(screenshots / "deployment-reports.png"), full_page=True)
    check_a11y(page, "deployment-reports")

    with page.expect_download() as info:
        page.locator("#reports-table tbody tr").first.get_by_role("link", name=".xlsx").click()
    xlsx = tmp_path / info.value.suggested_filename
    info.value.save_as(str(xlsx))
    sheet = load_workbook(io.BytesIO(xlsx.read_bytes())).active
    values = [row for row in sheet.iter_rows(values_only=True) if row and row[0]]
    header = next(r for r in values if r[0] == "Phường/xã/thị trấn")
    by_name = {r[0]: dict(zip(header, r, strict=True)) for r in values[values.index(header) + 1:]}
    assert len(by_name) == CAN_GIO_COMMUNES + 1  # the communes and the total
    assert by_name["Xã Bình Khánh"]["Đơn vị đăng ký"] >= 1 and by_name["Thị trấn Cần Thạnh"]["Đơn vị đăng ký"] >= 1
    assert "Phường Bến Nghé" not in by_name

    with page.expect_download() as info:
        page.locator("#reports-table tbody tr").first.get_by_role("link", name="PDF").click()
    pdf = tmp_path / info.value.suggested_filename
    info.value.save_as(str(pdf))
    text = pdfium.PdfDocument(pdf.read_bytes())[0].get_textpage().get_text_range()
    assert "Báo cáo kết quả triển khai khai báo y tế điện tử – Huyện Cần Giờ" in text
    assert "Xã Bình Khánh" in text and "Thị trấn Cần Thạnh" in text
    # Render the first page to look at it.
    pdfium.PdfDocument(pdf.read_bytes())[0].render(scale=1.2).to_pil().save(screenshots / "deployment-report-pdf.png")
    assert context.errors == [], context.errors
