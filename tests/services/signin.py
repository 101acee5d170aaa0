"""Signing in to provisioning's console as a browser does, and the CSRF token of its forms.

The tests pass the session cookie explicitly (``cookies=``): the client's own cookie jar
is emptied around each call, so one client can act for several officials in turn.
Importable from ``tests.services.conftest`` as well.
"""
from __future__ import annotations

import re

import httpx

from libs.common.auth import SESSION_COOKIE

HTML = {"accept": "text/html"}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def sign_in(client: httpx.AsyncClient, username: str, password: str, next_url: str | None = "/",
                  headers: dict[str, str] | None = None) -> httpx.Response:
    """``POST /signin`` with the form's fields (``next`` left out when ``next_url`` is None)."""
    data = {"username": username, "password": password}
    if next_url is not None:
        data["next"] = next_url
    client.cookies.clear()
    response = await client.post("/signin", data=data, headers={**HTML, **(headers or {})})
    client.cookies.clear()
    return response


def session_of(response: httpx.Response) -> dict[str, str]:
    """The session cookie a successful sign-in (303) set, as ``cookies=`` of the next requests."""
    assert response.status_code == 303, response.text
    return {SESSION_COOKIE: response.cookies[SESSION_COOKIE]}


async def signed_in(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    """The session cookie of ``username``, signed in with ``password`` (which must be right)."""
    return session_of(await sign_in(client, username, password))


def csrf_in(page: str) -> str:
    """The CSRF token a console page's forms carry (libs/common/csrf.py)."""
    found = CSRF_FIELD.search(page)
    assert found, "no csrf_token field on the page"
    return found.group(1)


async def csrf_token(client: httpx.AsyncClient, cookies: dict[str, str], path: str = "/") -> str:
    """The CSRF token of the console page at ``path``, opened with the session ``cookies``."""
    client.cookies.clear()
    page = await client.get(path, headers=HTML, cookies=cookies)
    client.cookies.clear()
    assert page.status_code == 200, page.status_code
    return csrf_in(page.text)
