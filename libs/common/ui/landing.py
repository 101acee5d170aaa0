"""The landing page of the local one-command run (port 8100).

It lists the five consoles, the demo sign-ins and, when given, the public demo
declaration link, so that someone trying the system on a laptop knows where to go; with
a demo mailbox (libs/common/mailbox.py) it also shows every e-mail the system sent.
"""
from __future__ import annotations

import ipaddress
from datetime import timedelta, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from ..mailbox import MailStore

from .i18n import LocaleMiddleware
from .templates import install_error_pages, make_templates, mount_static

LANDING_PORT = 8100
PUBLIC_SERVICE_KEYS = frozenset({"public", "public_declaration", "declaration_public"})
VIETNAM = timezone(timedelta(hours=7))


def _from_this_computer(request: Request) -> bool:
    """The demo mailbox holds initial passwords: it answers the loopback interface only,
    even when ``khaibao up --host`` listens on another address."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_public(link: dict[str, Any]) -> bool:
    return bool(link.get("public")) or link.get("service") in PUBLIC_SERVICE_KEYS


def _localized(link: dict[str, Any], field: str, lang: str) -> str:
    """``title_vi`` / ``title_en`` style fields, falling back to the other language
    and then to the bare field."""
    other = "en" if lang == "vi" else "vi"
    return str(
        link.get(f"{field}_{lang}") or link.get(field) or link.get(f"{field}_{other}") or ""
    )


def create_landing_app(links: list[dict], demo_accounts: list[dict], mailbox: MailStore | None = None,
                       mail_relay: str | None = None) -> FastAPI:
    """The landing app.

    links: dicts with ``service``, ``title_vi``, ``title_en``, ``url`` and
    ``description`` (or ``description_vi`` / ``description_en``); a link whose
    ``service`` is ``"public"`` (or that has ``public: True``) is the public demo
    declaration and is shown apart from the consoles.
    demo_accounts: dicts with ``role_label``, ``username``, ``password`` and
    ``jurisdiction``.
    mailbox: the demo mailbox's store; without one the page has no mailbox.
    mail_relay: ``host:port`` of a real relay that some service sends through instead
    (said on the mailbox page: those e-mails are not in it).
    """
    app = FastAPI(title="khaibao", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(LocaleMiddleware)
    mount_static(app)
    templates = make_templates()
    install_error_pages(app, templates)
    app.state.help_url = "/#help"
    consoles = [dict(link) for link in links if not _is_public(link)]
    public_links = [dict(link) for link in links if _is_public(link)]
    accounts = [dict(account) for account in demo_accounts]

    @app.get("/", response_class=HTMLResponse, name="landing")
    async def landing(request: Request) -> HTMLResponse:
        lang = request.state.lang

        def view(link: dict[str, Any]) -> dict[str, str]:
            return {
                "service": str(link.get("service", "")),
                "title": _localized(link, "title", lang),
                "description": _localized(link, "description", lang),
                "url": str(link.get("url", "")),
            }

        return templates.render(
            request,
            "landing.html",
            {
                "consoles": [view(link) for link in consoles],
                "public_links": [view(link) for link in public_links],
                "accounts": accounts,
                "mailbox": mailbox is not None,
            },
        )

    if mailbox is not None:
        def refused(request: Request) -> HTMLResponse:
            return templates.render_error(request, 403)

        @app.get("/mailbox", response_class=HTMLResponse, name="mailbox")
        async def mailbox_page(request: Request) -> HTMLResponse:
            if not _from_this_computer(request):
                return refused(request)
            mails = [{"id": m.id, "subject": m.subject, "to": m.recipients,
                      "time": m.received_at.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M:%S")}
                     for m in mailbox.list()]
            return templates.render(request, "mailbox.html", {"mails": mails, "relay": mail_relay})

        @app.get("/mailbox/{mail_id}", response_class=HTMLResponse, name="mailbox_message")
        async def mailbox_message(request: Request, mail_id: str) -> HTMLResponse:
            if not _from_this_computer(request):
                return refused(request)
            mail = mailbox.get(mail_id)
            if mail is None:
                return templates.render_error(request, 404)
            return templates.render(request, "mailbox_message.html", {
                "mail": mail, "time": mail.received_at.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M:%S")})

    @app.get("/healthz", response_class=PlainTextResponse, include_in_schema=False)
    async def healthz() -> str:
        return "ok"

    return app
