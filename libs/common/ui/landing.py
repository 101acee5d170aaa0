"""The landing page of the local one-command run (port 8100).

It lists the five consoles, the demo sign-ins and, when given, the public demo
declaration link, so that someone trying the system on a laptop knows where to go.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from .i18n import LocaleMiddleware
from .templates import install_error_pages, make_templates, mount_static

LANDING_PORT = 8100
PUBLIC_SERVICE_KEYS = frozenset({"public", "public_declaration", "declaration_public"})


def _is_public(link: dict[str, Any]) -> bool:
    return bool(link.get("public")) or link.get("service") in PUBLIC_SERVICE_KEYS


def _localized(link: dict[str, Any], field: str, lang: str) -> str:
    """``title_vi`` / ``title_en`` style fields, falling back to the other language
    and then to the bare field."""
    other = "en" if lang == "vi" else "vi"
    return str(
        link.get(f"{field}_{lang}") or link.get(field) or link.get(f"{field}_{other}") or ""
    )


def create_landing_app(links: list[dict], demo_accounts: list[dict]) -> FastAPI:
    """The landing app.

    links: dicts with ``service``, ``title_vi``, ``title_en``, ``url`` and
    ``description`` (or ``description_vi`` / ``description_en``); a link whose
    ``service`` is ``"public"`` (or that has ``public: True``) is the public demo
    declaration and is shown apart from the consoles.
    demo_accounts: dicts with ``role_label``, ``username``, ``password`` and
    ``jurisdiction``.
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
            },
        )

    @app.get("/healthz", response_class=PlainTextResponse, include_in_schema=False)
    async def healthz() -> str:
        return "ok"

    return app
