"""Issue 18 items 6 and 7, in Chromium on ``khaibao up`` with its demo week: a newcomer goes
from the landing page to the district's dashboard and sees the week's figures (desktop), and
reads the credentials e-mails the city's issuing sent in the demo mailbox (phone). A restart
of the same data folder does not load the week again.
"""
from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage

import httpx
import pytest

from tests.services.conftest import demo_token, launch_up

from .a11y import check_a11y
from .conftest import CHROMIUM, DEMO_PASSWORD
from .test_consoles import _no_horizontal_scroll, _reload_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]
DEMO_WEEK = True  # the module's `system` (conftest.py) loads the demo week


def _number(page, selector: str) -> int:
    return int(re.sub(r"\D", "", page.locator(selector).inner_text()) or 0)


def test_from_the_landing_page_to_a_dashboard_full_of_the_weeks_figures(system, new_context, screenshots):
    assert "demo week loaded" in system.log_path.read_text(errors="replace")
    context = new_context()
    page = context.new_page()
    page.goto(system.landing_url + "/", wait_until="load")
    page.screenshot(path=str(screenshots / "demo-landing.png"), full_page=True)
    check_a11y(page, "demo-landing")
    page.locator(f'a[href="{system.urls["reporting"]}"]').click()
    page.wait_for_load_state("load")
    assert "/signin" in page.url
    page.fill("#f-username", "vhtt.cangio")
    page.fill("#f-password", DEMO_PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state("load")
    assert page.url.startswith(system.urls["reporting"]), page.url
    page.screenshot(path=str(screenshots / "demo-dashboard.png"), full_page=True)
    check_a11y(page, "demo-dashboard")
    # Every panel shows something: units, declarations, reds, alerts and their acknowledgement.
    assert _number(page, "#total") >= 9
    assert _number(page, "#kpi-live") >= 9
    assert _number(page, "#kpi-declarations") >= 2500
    assert _number(page, "#kpi-flagged") > 0
    assert _number(page, "#kpi-alerts") > 0
    board = httpx.get(f"{system.urls['reporting']}/api/dashboard", timeout=10,
                      headers={"authorization": f"Bearer {demo_token(system, 'vhtt.cangio')}"}).json()
    assert len([d for d in board["per_day"] if d["declarations"]]) >= 6
    peak = max(range(24), key=lambda h: board["per_hour"][h])
    assert 5 <= peak <= 9 and board["per_hour"][peak] > 2 * board["per_hour"][13]
    assert 0.01 < board["totals"]["by_result"]["red"] / board["totals"]["declarations"] < 0.08
    assert board["alerts"]["acknowledged"] > 0 and board["alerts"]["open"] > 0
    assert board["alerts"]["median_minutes"] is not None
    assert any(v["burst"] for v in board["venues"]) and len(board["venues"]) >= 8
    assert len([r for r in board["rows"] if r["declarations"]]) >= 4
    assert not context.errors, context.errors


def test_the_units_dashboard_and_the_health_centers_inbox_are_not_empty(system):
    unit = httpx.get(f"{system.urls['reporting']}/api/unit/dashboard", timeout=10,
                     headers={"authorization": f"Bearer {demo_token(system, 'donvi.chocanthanh')}"}).json()
    assert unit["totals"]["declarations"] > 300
    alerts = httpx.get(f"{system.urls['notification']}/api/alerts", timeout=10,
                       headers={"authorization": f"Bearer {demo_token(system, 'ttyt.cangio')}"}).json()
    statuses = {a["status"] for a in alerts}
    assert {"acknowledged", "new"} <= statuses or {"acknowledged", "escalated"} <= statuses, statuses


def _send_a_list_by_email(system) -> None:
    """A school e-mails its filled list template to the district's address (intake's receiver,
    which `up` turns on); intake's reply goes to the mailbox."""
    from services.intake.tests.sheets import fill_template, unit_row

    port = int(re.search(r"lists by e-mail: SMTP 127\.0\.0\.1:(\d+)",
                         system.log_path.read_text(errors="replace")).group(1))
    template = httpx.get(f"{system.urls['intake']}/d/787/mau-danh-sach.xlsx", timeout=10)
    assert template.status_code == 200
    message = EmailMessage()
    message["From"], message["To"] = "Văn thư <vanthu@truonghoc.example>", "danhsach.787@khaibao.hochiminhcity.gov.vn"
    message["Subject"] = "Danh sách đơn vị"
    message.set_content("Kính gửi Phòng Văn hóa và Thông tin, đơn vị gửi danh sách đính kèm.")
    message.add_attachment(fill_template(template.content, [unit_row(1, commune="Xã Bình Khánh")]),
                           maintype="application", filename="danh-sach.xlsx",
                           subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(message)


def test_the_demo_mailbox_on_a_phone_shows_the_credentials_emails(system, new_context, screenshots):
    _send_a_list_by_email(system)
    context = new_context(phone=True)
    page = context.new_page()
    page.goto(system.landing_url + "/", wait_until="load")
    page.get_by_role("link", name="Mở hộp thư thử").click()
    page.wait_for_load_state("load")
    assert page.url == system.landing_url + "/mailbox"
    assert page.get_by_role("heading", name="Hộp thư thử").is_visible()
    assert "127.0.0.1" in page.locator(".notice--warning").inner_text()
    rows = page.locator("tr.mailbox__row")
    assert rows.count() >= 9
    text = page.locator("table").inner_text()
    # Credentials of the units the city issued (their contacts' addresses), and the alerts
    # of the demo commune.
    assert "th.canthanh@truonghoc.example" in text and "lienhe@thuysanbk.example" in text
    assert "yte.canthanh@canthanh.example" in text and "Cảnh báo" in text
    # ... and intake's reply to the list the school e-mailed.
    _reload_until(page, lambda p: "vanthu@truonghoc.example" in p.locator("table").inner_text(), "the reply")
    assert "Đã nhận danh sách" in page.locator("tr.mailbox__row", has_text="vanthu@truonghoc.example").inner_text()
    _no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "demo-mailbox-phone.png"), full_page=False)
    check_a11y(page, "demo-mailbox-phone")
    credentials = page.locator("tr.mailbox__row", has_text="th.canthanh@truonghoc.example").first
    credentials.locator("a").click()
    page.wait_for_load_state("load")
    body = page.locator("pre.mail-text").inner_text()
    username = re.search(r"Tên đăng nhập: (\S+)", body).group(1)
    password = re.search(r"Mật khẩu:\s+(\S+)", body).group(1)
    _no_horizontal_scroll(page)
    page.screenshot(path=str(screenshots / "demo-mailbox-credentials-phone.png"), full_page=True)
    check_a11y(page, "demo-mailbox-credentials-phone")
    # The e-mailed password is the unit's real first password.
    token = httpx.post(f"{system.urls['provisioning']}/api/token", timeout=10,
                       json={"username": username, "password": password})
    assert token.status_code == 200, token.text
    page.locator("a", has_text="Về hộp thư thử").click()
    page.wait_for_load_state("load")
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state("load")
    assert page.get_by_role("heading", name="Demo mailbox").is_visible()
    assert not context.errors, context.errors


def test_a_restart_does_not_load_the_week_again(system, tmp_path):
    headers = {"authorization": f"Bearer {demo_token(system, 'vhtt.cangio')}"}
    before = httpx.get(f"{system.urls['reporting']}/api/dashboard", headers=headers, timeout=10).json()
    mails = len(list((system.data_dir / "mailbox").glob("*.eml")))
    stopped, stragglers = system.stop()
    assert stopped, stragglers
    again = launch_up(system.data_dir, tmp_path / "again.log", demo_week=True)
    try:
        again.wait_ready(timeout=90)
        assert "demo week" not in again.log_path.read_text(errors="replace")
        headers = {"authorization": f"Bearer {demo_token(again, 'vhtt.cangio')}"}
        after = httpx.get(f"{again.urls['reporting']}/api/dashboard", headers=headers, timeout=10).json()
        assert after["totals"]["declarations"] == before["totals"]["declarations"]
        assert after["alerts"]["raised"] == before["alerts"]["raised"]
        assert len(list((system.data_dir / "mailbox").glob("*.eml"))) >= mails
    finally:
        ok, _ = again.stop()
        if not ok:
            again.kill()
