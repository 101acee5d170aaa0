"""The API's interactive documentation (Swagger UI) at ``/api/docs``, served by the service
itself: no CDN, no inline script, so it works under the consoles' strict CSP
(``script-src 'self'; style-src 'self'``).

The Swagger UI files (``swagger-ui-bundle.js``, ``swagger-ui.css``) come from the PyPI
package ``fastapi-offline``, which ships a current Swagger UI 5 (OpenAPI 3.1, as FastAPI
writes it); only its static files are used, mounted at ``/static/swagger-ui``. The page
starts Swagger UI with ``/static/common/swagger-init.js``, which reads the document's
address from ``data-url`` of ``#swagger-ui``; ``/static/common/swagger-a11y.css`` darkens the
colours that missed WCAG 2.1 AA contrast.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/api/docs"
SWAGGER_STATIC_PREFIX = "/static/swagger-ui"
SWAGGER_ROUTE_NAME = "static-swagger-ui"


def swagger_ui_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def page(title: str, openapi_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} – API</title>
<link rel="stylesheet" href="{SWAGGER_STATIC_PREFIX}/swagger-ui.css">
<link rel="stylesheet" href="/static/common/swagger-a11y.css">
<link rel="icon" href="{SWAGGER_STATIC_PREFIX}/favicon.png">
</head>
<body>
<noscript><p>Swagger UI needs JavaScript. The OpenAPI document itself: <a href="{escape(openapi_url)}">{escape(openapi_url)}</a></p></noscript>
<div id="swagger-ui" data-url="{escape(openapi_url)}"></div>
<script src="{SWAGGER_STATIC_PREFIX}/swagger-ui-bundle.js"></script>
<script src="/static/common/swagger-init.js"></script>
</body>
</html>
"""


def install_api_docs(app: FastAPI, title: str) -> None:
    """Mount the Swagger UI files and add ``GET /api/docs`` (public, like the document)."""
    app.mount(SWAGGER_STATIC_PREFIX, StaticFiles(directory=swagger_ui_dir()), name=SWAGGER_ROUTE_NAME)
    html = page(title, app.openapi_url or "/api/openapi.json")

    @app.get(DOCS_URL, include_in_schema=False)
    async def api_docs(request: Request) -> HTMLResponse:  # noqa: ARG001 - FastAPI passes it
        return HTMLResponse(html, headers={"cache-control": "no-cache"})
