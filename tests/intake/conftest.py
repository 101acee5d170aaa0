"""Fixtures of the intake tests: the real intake app (and reporting, when events matter)
in-process on SQLite and the embedded bus, tokens for every office, list files."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from libs.common.auth import SESSION_COOKIE, Role
from services.intake.excel.template import build_template
from tests.services.conftest import (  # noqa: F401 - fixtures re-exported for the intake tests
    CITY,
    DEMO_COMMUNE,
    DEMO_DISTRICT,
    OTHER_COMMUNE,
    OTHER_DISTRICT,
    OTHER_DISTRICT_COMMUNE,
    Minter,
    RunningServices,
    _clean_environment,
    build_settings,
    csrf_in,
    keys,
    make_settings,
    mint,
    registration,
    run_services,
)

HTML = {"accept": "text/html"}
FAST = {"worker_poll_interval": 0.05, "relay_poll_interval": 0.05}


@pytest.fixture
async def intake(keys) -> AsyncIterator[RunningServices]:
    """The intake service alone (its worker included)."""
    async with run_services({"intake": build_settings("intake", keys, **FAST)}) as running:
        yield running


@pytest.fixture(scope="session")
def template() -> bytes:
    from libs.common.adminunits import load_tree

    return build_template(load_tree(None, "79").get(DEMO_DISTRICT))


def headers(minter: Minter, role: Role, path: str, html: bool = False) -> dict[str, str]:
    found = minter.headers(role, path)
    return {**HTML, **found} if html else found


class Browser:
    """A signed-in official as a browser: the session cookie, forms with their CSRF token."""

    def __init__(self, client, minter: Minter, role: Role, path: str) -> None:  # noqa: ANN001
        self.client = client
        self.headers = {**HTML, "cookie": f"{SESSION_COOKIE}={minter.token(role, path)}"}

    async def get(self, url: str, **kwargs):  # noqa: ANN003, ANN201
        return await self.client.get(url, headers=self.headers, **kwargs)

    async def csrf(self, url: str = "/") -> str:
        return csrf_in((await self.get(url)).text)

    async def post(self, url: str, data: dict | None = None, files=None, csrf_from: str = "/"):  # noqa: ANN001, ANN201
        body = {"csrf_token": await self.csrf(csrf_from), **(data or {})}
        return await self.client.post(url, data=body, files=files, headers=self.headers)


async def wait_upload(client, auth: dict, upload_id: str, timeout: float = 60) -> dict:  # noqa: ANN001
    """Poll the progress endpoint until the background work is done."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/imports/{upload_id}", headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] not in ("queued", "validating", "importing"):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


async def upload(client, auth: dict, content: bytes, filename: str = "danh-sach.xlsx"):  # noqa: ANN001, ANN201
    return await client.post("/api/imports", headers=auth, files={
        "file": (filename, content, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")})
