"""Accounts in Chromium, against ``khaibao up`` and a real SMTP server (aiosmtpd).

A district forwards a batch (sent through an outbox and the embedded bus, as intake does);
the city DIC issues it in the provisioning console and follows the progress bar; the
school signs in with the password of its e-mail, must choose its own, and prints the QR
poster of its gate (the downloaded PDF's QR code is decoded); the district focal point
opens the market's credentials from the Support Channel, prints the slip and marks them
handed over. Screenshots go to test-results/browser/.
"""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import httpx
import pypdfium2 as pdfium
import pytest
import zxingcpp

from libs.common.demo import DEMO_PASSWORD
from tests.accounts.support import BatchSender, MailServer, batch, credentials_in, launch_up_with, unit

from .a11y import check_a11y
from .conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed"),
]

SCHOOL = "Trường Tiểu học Bình Thạnh"
MARKET = "Chợ Hàng Dương"
SCHOOL_EMAIL = f"bgh.binhthanh.{uuid.uuid4().hex[:6]}@example.vn"


@pytest.fixture(scope="module")
def mail():
    server = MailServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def up(tmp_path_factory, mail):
    base = tmp_path_factory.mktemp("khaibao-accounts")
    process = launch_up_with(base / "var", base / "up.log", {
        "KHAIBAO_NOTIFICATION_SMTP_PORT": str(mail.port), "KHAIBAO_NOTIFICATION_DELIVERY_POLL_INTERVAL": "0.2",
        "KHAIBAO_RELAY_POLL_INTERVAL": "0.1"})
    try:
        process.wait_ready(90)
        yield process
    finally:
        ok, _ = process.stop()
        if not ok:
            process.kill()


@pytest.fixture(scope="module")
def forwarded(up):
    """The district's batch, on the bus: a school with an e-mail address, a market without."""
    event = batch([unit(SCHOOL, email=SCHOOL_EMAIL, contact_name="Đặng Minh Khoa", gates=2),
                   unit(MARKET, unit_type="market", gates=1)], reference="LO-CG-TRINH-DUYET")

    async def send() -> None:
        sender = await BatchSender.start(up.data_dir, f"embedded://{up.data_dir / 'bus.db'}")
        try:
            await sender.send(event)
        finally:
            await sender.stop()

    asyncio.run(send())
    return event


def _sign_in(page, username: str, password: str = DEMO_PASSWORD) -> None:
    assert "/signin" in page.url, page.url
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state("load")


def _wait_for(predicate, what: str, timeout: float = 60.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not seen within {timeout:.0f}s"
        time.sleep(0.3)


def test_the_city_issues_a_batch(up, forwarded, new_context, screenshots):
    context = new_context()
    page = context.new_page()
    page.goto(up.urls["provisioning"] + "/batches", wait_until="load")
    _sign_in(page, "so.tttt")
    assert page.url == up.urls["provisioning"] + "/batches"

    def listed():
        page.reload(wait_until="load")
        return page.locator('tr[data-batch="LO-CG-TRINH-DUYET"]').count() == 1

    _wait_for(listed, "the forwarded batch in the city console")
    assert page.locator("h1").inner_text() == "Các lô đã chuyển"
    district_row = page.locator('tr[data-path="79/787"]')
    assert "Huyện Cần Giờ" in district_row.inner_text()
    page.screenshot(path=str(screenshots / "accounts-batches-city.png"), full_page=True)
    check_a11y(page, "accounts-batches-city")

    page.locator('tr[data-batch="LO-CG-TRINH-DUYET"]').get_by_role("link", name="LO-CG-TRINH-DUYET").click()
    page.wait_for_load_state("load")
    assert SCHOOL in page.locator("main").inner_text() and MARKET in page.locator("main").inner_text()
    assert "Không: qua Kênh hỗ trợ" in page.locator(f'tr:has-text("{MARKET}")').inner_text()
    page.get_by_role("button", name=re.compile("Cấp tài khoản cho cả lô")).click()
    page.wait_for_load_state("load")
    assert "/jobs/" in page.url and page.locator("h1").inner_text() == "Cấp tài khoản"
    assert page.locator("progress#job-progress").count() == 1
    page.screenshot(path=str(screenshots / "accounts-job-progress.png"), full_page=True)
    # The page refreshes itself (meta refresh, no script) until the job is done.
    page.wait_for_function("() => document.querySelector('#job-status').innerText.includes('Hoàn tất')",
                           timeout=60_000, polling=500)
    assert page.locator("progress#job-progress").get_attribute("value") == "2"
    assert page.locator("progress#job-progress").get_attribute("max") == "2"
    page.screenshot(path=str(screenshots / "accounts-job-done.png"), full_page=True)
    check_a11y(page, "accounts-job-done")
    assert context.errors == [], context.errors


def test_the_school_signs_in_with_its_emailed_password_and_prints_its_poster(up, mail, new_context, screenshots,
                                                                             tmp_path):
    message = _wait_for(lambda: next(iter(mail.inbox.to(SCHOOL_EMAIL)), None), "the school's e-mail")
    assert message["Subject"] == f"Tài khoản Hệ thống khai báo y tế điện tử – {SCHOOL}"
    username, password = credentials_in(message)
    signin_url = re.search(r"Trang đăng nhập: (\S+)", message.get_body(preferencelist=("plain",)).get_content())
    assert signin_url.group(1) == up.urls["provisioning"] + "/signin"

    context = new_context(phone=True)
    page = context.new_page()
    page.goto(signin_url.group(1), wait_until="load")
    _sign_in(page, username, password)
    # The first sign-in: the password must be changed before anything else.
    assert page.url == up.urls["provisioning"] + "/password"
    assert "Đây là lần đăng nhập đầu tiên" in page.locator("main").inner_text()
    page.goto(up.urls["provisioning"] + "/", wait_until="load")
    assert page.url == up.urls["provisioning"] + "/password"
    page.screenshot(path=str(screenshots / "accounts-unit-first-signin.png"), full_page=True)
    check_a11y(page, "accounts-unit-first-signin")
    page.fill("#f-current", password)
    page.fill("#f-new", "Hoa-phuong-do-san-truong-2021")
    page.fill("#f-confirm", "Hoa-phuong-do-san-truong-2021")
    page.get_by_role("button", name="Đổi mật khẩu").click()
    page.wait_for_load_state("load")
    assert "Đã đổi mật khẩu" in page.locator("main").inner_text()
    assert SCHOOL in page.locator("main").inner_text()

    page.get_by_role("link", name="In áp phích mã QR").click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == SCHOOL
    rows = page.locator("tr[data-venue]")
    assert rows.count() == 2
    code = rows.first.get_attribute("data-venue")
    page.screenshot(path=str(screenshots / "accounts-unit-posters-phone.png"), full_page=True)
    check_a11y(page, "accounts-unit-posters-phone")
    with page.expect_download() as download_info:
        rows.first.get_by_role("link", name="In áp phích (PDF)").click()
    download = download_info.value
    pdf_path = tmp_path / download.suggested_filename
    download.save_as(str(pdf_path))
    assert download.suggested_filename.endswith(f"-{code}.pdf")
    document = pdfium.PdfDocument(pdf_path.read_bytes())
    image = document[0].render(scale=2).to_pil()
    image.save(str(screenshots / "accounts-poster.png"))
    [qr] = zxingcpp.read_barcodes(image)
    assert qr.text == f"{up.urls['declaration']}/v/{code}"
    text = document[0].get_textpage().get_text_range()
    assert SCHOOL in text and "KHAI BÁO Y TẾ ĐIỆN TỬ" in text
    document.close()
    # The old password no longer works; the chosen one does.
    old = httpx.post(up.urls["provisioning"] + "/api/token", json={"username": username, "password": password})
    assert old.status_code == 401
    assert context.errors == [], context.errors


def test_the_district_opens_credentials_from_the_support_channel(up, new_context, screenshots):
    context = new_context()
    page = context.new_page()
    page.goto(up.urls["notification"] + "/", wait_until="load")
    _sign_in(page, "vhtt.cangio")
    assert page.url == up.urls["notification"] + "/"

    def waiting():
        page.reload(wait_until="load")
        return "Thông tin đăng nhập chờ bàn giao: 1" in page.locator("#support-summary").inner_text()

    _wait_for(waiting, "the market's credentials in the Support Channel")
    page.get_by_role("link", name="Kênh hỗ trợ", exact=True).first.click()
    page.wait_for_load_state("load")
    assert page.url == up.urls["notification"] + "/support"  # a district's channel is its own thread
    assert "Kênh hỗ trợ: Huyện Cần Giờ" == page.locator("h1").inner_text()
    main = page.locator("main").inner_text()
    assert "Đã chuyển lô LO-CG-TRINH-DUYET lên Sở: 2 đơn vị" in main
    assert "Thông tin đăng nhập của 1 đơn vị không có thư điện tử" in main
    page.screenshot(path=str(screenshots / "accounts-support-thread.png"), full_page=True)
    check_a11y(page, "accounts-support-thread")

    row = page.locator("tr[data-username]", has_text=MARKET)
    username = row.get_attribute("data-username")
    row.get_by_role("link", name="Mở").click()
    page.wait_for_load_state("load")
    page.check("#f-confirm")
    page.get_by_role("button", name="Mở và xem mật khẩu").click()
    page.wait_for_load_state("load")
    password = page.locator("#credential-password").inner_text()
    assert page.locator("#credential-username").inner_text() == username
    page.screenshot(path=str(screenshots / "accounts-credentials-slip.png"), full_page=True)
    check_a11y(page, "accounts-credentials-slip")
    token = httpx.post(up.urls["provisioning"] + "/api/token", json={"username": username, "password": password})
    assert token.status_code == 200 and token.json()["must_change_password"] is True

    page.check("#f-confirm")
    page.get_by_role("button", name="Đánh dấu đã bàn giao").click()
    page.wait_for_load_state("load")
    assert "Đã đánh dấu đã bàn giao cho đơn vị." in page.locator("main").inner_text()
    assert "Đã bàn giao" in page.locator("tr[data-username]", has_text=MARKET).inner_text()
    # Opened once: the password is not shown again.
    page.goto(up.urls["notification"] + "/support/787", wait_until="load")
    assert password not in page.content()
    assert context.errors == [], context.errors
