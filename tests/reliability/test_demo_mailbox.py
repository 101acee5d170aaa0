"""Issue 18 item 7: ``khaibao up`` sent its e-mails to 127.0.0.1:1025, where nothing listens.

The demo mailbox (libs/common/mailbox.py): a real aiosmtpd catcher receiving real SMTP
(aiosmtplib, as notification and intake send), the landing page's "Hộp thư thử" listing
and showing the messages (escaped, plain text only, to this computer only), the retention
of the stored files, and the launcher pointing the services at it unless a real relay is set.
"""
from __future__ import annotations

import time
from email.message import EmailMessage

import aiosmtplib
import httpx
import pytest

from libs.common.cli import demo_mail_env
from libs.common.mailbox import MailCatcher, MailStore
from libs.common.ui.landing import create_landing_app


@pytest.fixture
def catcher(tmp_path):
    running = MailCatcher(MailStore(tmp_path / "mailbox", retention_days=21)).start()
    yield running
    running.stop()


def _mail(subject: str, to: str, text: str, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, "khaibao@tphcm.gov.vn", to
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


async def _landing(store: MailStore, client_host: str = "127.0.0.1") -> httpx.AsyncClient:
    app = create_landing_app([], [], mailbox=store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(client_host, 50000)),
                             base_url="http://127.0.0.1:8100")


async def test_mails_sent_over_smtp_are_listed_newest_first_and_shown_as_escaped_text(catcher):
    await aiosmtplib.send(_mail("Tài khoản của Trường Tiểu học", "th@truonghoc.example",
                                "Tên đăng nhập: dv27664-abcde\nMật khẩu: 1234-5678"),
                          hostname="127.0.0.1", port=catcher.port)
    await aiosmtplib.send(_mail("<script>alert(1)</script> Cảnh báo", "yte@canthanh.example",
                                "Sốt kèm ho <b>không in đậm</b>", html="<p onclick='x()'>HTML part</p>"),
                          hostname="127.0.0.1", port=catcher.port)
    async with await _landing(catcher.store) as client:
        listing = await client.get("/mailbox")
        assert listing.status_code == 200
        html = listing.text
        assert "Hộp thư thử" in html and "127.0.0.1" in html
        # newest first, subject and recipient shown, markup escaped
        assert html.index("Cảnh báo") < html.index("Tài khoản của Trường Tiểu học")
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "th@truonghoc.example" in html
        ids = [m.id for m in catcher.store.list()]
        shown = await client.get(f"/mailbox/{ids[0]}")
        assert shown.status_code == 200
        assert "Sốt kèm ho &lt;b&gt;không in đậm&lt;/b&gt;" in shown.text
        assert "HTML part" not in shown.text and "onclick" not in shown.text
        credentials = await client.get(f"/mailbox/{ids[1]}?lang=en")
        assert "Mật khẩu: 1234-5678" in credentials.text and "Demo mailbox" in credentials.text
        landing = await client.get("/")
        assert 'href="/mailbox"' in landing.text
        for bad in ("../up.log", "..%2F..%2Fkeys", "1796691003221509-490eea17f34"):
            assert (await client.get(f"/mailbox/{bad}")).status_code == 404


async def test_the_mailbox_answers_this_computer_only(catcher):
    catcher.store.save(_mail("Mật khẩu", "a@example.vn", "Mật khẩu: 1234").as_bytes(), ["a@example.vn"])
    async with await _landing(catcher.store, client_host="192.0.2.10") as client:
        assert (await client.get("/mailbox")).status_code == 403
        mail_id = catcher.store.list()[0].id
        refused = await client.get(f"/mailbox/{mail_id}")
        assert refused.status_code == 403 and "1234" not in refused.text
        assert (await client.get("/")).status_code == 200


def test_stored_mails_are_deleted_after_the_retention_period(tmp_path):
    store = MailStore(tmp_path / "mailbox", retention_days=21)
    now = time.time()
    old = store.save(b"Subject: old\r\n\r\nold", ["a@example.vn"], now=now - 22 * 86_400)
    recent = store.save(b"Subject: recent\r\n\r\nrecent", ["a@example.vn"], now=now - 20 * 86_400)
    assert store.prune(now=now) == 1
    assert [m.id for m in store.list()] == [recent]
    assert store.get(old) is None


def test_up_points_notification_and_intake_at_the_catcher_unless_a_relay_is_set():
    updates, relays = demo_mail_env({}, "127.0.0.1", 2525, lists_port=2526)
    assert updates["KHAIBAO_INTAKE_SMTP_PORT"] == "2526"  # lists by e-mail, whose replies land in the mailbox
    assert updates["KHAIBAO_NOTIFICATION_SMTP_HOST"] == "127.0.0.1"
    assert updates["KHAIBAO_NOTIFICATION_SMTP_PORT"] == "2525"
    assert updates["KHAIBAO_INTAKE_SMTP_RELAY_HOST"] == "127.0.0.1"
    assert updates["KHAIBAO_INTAKE_SMTP_RELAY_PORT"] == "2525"
    assert relays == []
    updates, relays = demo_mail_env({"KHAIBAO_SMTP_HOST": "smtp.tphcm.gov.vn", "KHAIBAO_SMTP_PORT": "587",
                                     "KHAIBAO_INTAKE_SMTP_RELAY_HOST": "smtp.tphcm.gov.vn",
                                     "KHAIBAO_INTAKE_SMTP_PORT": "2600"}, "127.0.0.1", 2525, lists_port=2526)
    assert updates == {}
    assert relays == ["smtp.tphcm.gov.vn:587", "smtp.tphcm.gov.vn:25"]


async def test_notifications_mailer_with_ups_settings_reaches_the_catcher(catcher, monkeypatch):
    """Notification's own Mailer, configured from the environment `up` gives the services."""
    from services.notification.mailer import Mailer
    from services.notification.settings import NotificationSettings

    updates, _ = demo_mail_env({}, "127.0.0.1", catcher.port)
    for name, value in updates.items():
        monkeypatch.setenv(name, value)
    async with Mailer(NotificationSettings()) as mailer:
        await mailer.send(_mail("Thư từ dịch vụ thông báo", "donvi@example.vn", "Xin chào"))
    assert [m.subject for m in catcher.store.list()] == ["Thư từ dịch vụ thông báo"]
