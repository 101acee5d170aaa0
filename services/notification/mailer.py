"""E-mails of the notification service: composed in the recipient's language (plain text and
HTML, the service's catalogue; Vietnamese unless told otherwise), sent with aiosmtplib."""
from __future__ import annotations

from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path

import aiosmtplib
import jinja2

from libs.common.ui.i18n import DEFAULT_LOCALE, get_translations

from .models import Delivery
from .settings import NotificationSettings

TEMPLATES = Path(__file__).resolve().parent / "templates" / "notification" / "email"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@lru_cache(maxsize=4)
def _environment(lang: str = DEFAULT_LOCALE) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True, lstrip_blocks=True,
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
                             keep_trailing_newline=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(get_translations(lang, (LOCALE_DIR,)), newstyle=True)  # type: ignore[attr-defined]
    return env


def subject_of(delivery: Delivery, lang: str = DEFAULT_LOCALE) -> str:
    _ = get_translations(lang, (LOCALE_DIR,)).gettext
    if delivery.kind == "reset":
        return _("New password – Electronic health declaration system – %(unit)s") % {"unit": delivery.unit_name}
    return _("Account on the electronic health declaration system – %(unit)s") % {"unit": delivery.unit_name}


def compose(settings: NotificationSettings, delivery: Delivery, password: str,
            lang: str = DEFAULT_LOCALE) -> MIMEMultipart:
    """The credentials e-mail in ``lang``: a plain-text part and an HTML alternative, both UTF-8.
    The recipient is a unit's contact, who has no account yet, hence no language of their
    own: Vietnamese, the default.

    Built with the classic MIME classes and ``Header``: on Python 3.11 the newer
    ``EmailMessage`` folding drops the space between two encoded words of a long
    Vietnamese subject ("y tế điện tử" arrives as "y tếđiện tử").
    """
    context = {"delivery": delivery, "password": password, "reset": delivery.kind == "reset",
               "help_line": settings.help_line, "subject": subject_of(delivery, lang), "lang": lang}
    message = MIMEMultipart("alternative")
    message["Subject"] = Header(subject_of(delivery, lang), "utf-8")
    name, address = parseaddr(settings.mail_from)
    message["From"] = formataddr((name, address or "khaibao@localhost"), charset="utf-8")
    message["To"] = formataddr((delivery.contact_name or "", delivery.contact_email or ""), charset="utf-8")
    message["Date"] = formatdate(usegmt=True)
    domain = (address or "").rpartition("@")[2] or "khaibao.local"
    message["Message-ID"] = make_msgid("khaibao", domain=domain)
    message["Content-Language"] = lang
    message["Auto-Submitted"] = "auto-generated"
    message.attach(MIMEText(_environment(lang).get_template("credentials.txt").render(context), "plain", "utf-8"))
    message.attach(MIMEText(_environment(lang).get_template("credentials.html").render(context), "html", "utf-8"))
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
