"""E-mails of the notification service: composed in Vietnamese (plain text and HTML), sent with aiosmtplib."""
from __future__ import annotations

from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path

import aiosmtplib
import jinja2

from .models import Delivery
from .settings import NotificationSettings

TEMPLATES = Path(__file__).resolve().parent / "templates" / "notification" / "email"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True, lstrip_blocks=True,
                              autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
                              keep_trailing_newline=True)


def subject_of(delivery: Delivery) -> str:
    if delivery.kind == "reset":
        return f"Mật khẩu mới – Hệ thống khai báo y tế điện tử – {delivery.unit_name}"
    return f"Tài khoản Hệ thống khai báo y tế điện tử – {delivery.unit_name}"


def compose(settings: NotificationSettings, delivery: Delivery, password: str) -> MIMEMultipart:
    """The credentials e-mail: a plain-text part and an HTML alternative, both UTF-8.

    Built with the classic MIME classes and ``Header``: on Python 3.11 the newer
    ``EmailMessage`` folding drops the space between two encoded words of a long
    Vietnamese subject ("y tế điện tử" arrives as "y tếđiện tử").
    """
    context = {"delivery": delivery, "password": password, "reset": delivery.kind == "reset",
               "help_line": settings.help_line, "subject": subject_of(delivery)}
    message = MIMEMultipart("alternative")
    message["Subject"] = Header(subject_of(delivery), "utf-8")
    name, address = parseaddr(settings.mail_from)
    message["From"] = formataddr((name, address or "khaibao@localhost"), charset="utf-8")
    message["To"] = formataddr((delivery.contact_name or "", delivery.contact_email or ""), charset="utf-8")
    message["Date"] = formatdate(usegmt=True)
    domain = (address or "").rpartition("@")[2] or "khaibao.local"
    message["Message-ID"] = make_msgid("khaibao", domain=domain)
    message["Content-Language"] = "vi"
    message["Auto-Submitted"] = "auto-generated"
    message.attach(MIMEText(_environment().get_template("credentials.txt").render(context), "plain", "utf-8"))
    message.attach(MIMEText(_environment().get_template("credentials.html").render(context), "html", "utf-8"))
    return message


def sender_address(settings: NotificationSettings) -> str:
    return parseaddr(settings.mail_from)[1] or "khaibao@localhost"


class Mailer:
    """One SMTP connection for a batch of messages (``async with Mailer(settings) as m``)."""

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings
        self.client = aiosmtplib.SMTP(
            hostname=settings.smtp_host, port=settings.smtp_port, timeout=settings.smtp_timeout,
            use_tls=settings.smtp_use_tls, start_tls=settings.smtp_starttls if settings.smtp_starttls else False,
            username=settings.smtp_username or None, password=settings.smtp_password or None)

    async def __aenter__(self) -> "Mailer":
        await self.client.connect()
        return self

    async def __aexit__(self, *exc) -> None:  # noqa: ANN002
        try:
            if self.client.is_connected:
                await self.client.quit()
        except (aiosmtplib.SMTPException, OSError):
            self.client.close()

    async def send(self, message: MIMEMultipart) -> None:
        await self.client.send_message(message, sender=sender_address(self.settings))
