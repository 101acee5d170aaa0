"""Issue 16, item 5: every sign-in and account security event on the record.

Finding: "Sign-in success, failure, lock-out, sign-out and password change leave no
trace: no log line, no audit row, no metric." Each event must leave a row of the sign-in
history (who: the account if known, else the username as typed, cleaned; from where: the
client address; when; the outcome), a JSON log line without the password or the token,
and a metric; the city and the districts read the history of their officials on
/signins (jurisdiction filtered on the server) and export it as .xlsx.

Provisioning runs in-process with the demo accounts on both backends (SQLite + embedded
bus, PostgreSQL + Kafka); the ASGI client's address is set per client, as uvicorn sets it
from the socket (or from a trusted proxy's X-Forwarded-For).
"""
from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from openpyxl import load_workbook
from prometheus_client import REGISTRY
from sqlalchemy import select

from libs.common.auth import SESSION_COOKIE, Role
from libs.common.demo import DEMO_PASSWORD
from libs.common.observability import JsonFormatter

from tests.services.conftest import HTML, csrf_token, session_of, sign_in

from .conftest import DEMO_DISTRICT, OTHER_DISTRICT, build_settings, run_services

ADDRESS = "203.0.113.7"
WRONG = "Sai-Mat-Khau-2718281"
NEW_PASSWORD = "Hoa-sen-nở-giữa-đầm-47"
HOSTILE_USERNAME = "=HYPERLINK(\"http://evil.example\")"


class Capture(logging.Handler):
    """Every log record of the process, formatted as the services format them (JSON)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("provisioning"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def events(self) -> list[dict]:
        return [entry for entry in map(json.loads, self.lines) if "account_event" in entry]


@pytest.fixture
def logs():
    capture = Capture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)


@pytest.fixture
async def system(backend, keys):
    settings = build_settings("provisioning", keys, demo=True, database_url=await backend.database_url("provisioning"),
                              bus_url=backend.bus_url, bus_namespace=backend.bus_options().get("namespace", ""))
    async with run_services({"provisioning": settings}) as running:
        app = running.apps["provisioning"]
        transport = httpx.ASGITransport(app=app, client=(ADDRESS, 40000), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://provisioning.test") as client:
            running.extra["client"] = client
            yield running


def _counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "provisioning", **labels}) or 0.0


async def _events(system, **where) -> list:  # noqa: ANN001
    from services.provisioning.models import SignInEvent

    async with system.runtime("provisioning").database.transaction(readonly=True) as session:
        query = select(SignInEvent).order_by(SignInEvent.at)
        for key, value in where.items():
            query = query.where(getattr(SignInEvent, key) == value)
        return list((await session.execute(query)).scalars())


async def test_each_signin_is_on_the_record(system, logs):
    client = system.extra["client"]
    before = {o: _counter("khaibao_signins_total", outcome=o) for o in ("success", "failure")}
    ok = await sign_in(client, "ubnd.canthanh", DEMO_PASSWORD)
    assert ok.status_code == 303
    assert (await sign_in(client, "ubnd.canthanh", WRONG)).status_code == 401
    assert (await sign_in(client, "nobody.here", WRONG)).status_code == 401
    api = await client.post("/api/token", json={"username": "ttyt.cangio", "password": DEMO_PASSWORD})
    assert api.status_code == 200
    token = api.json()["access_token"]

    rows = await _events(system, event="signin")
    assert [(r.username, r.outcome) for r in rows] == [
        ("ubnd.canthanh", "success"), ("ubnd.canthanh", "failure"), ("nobody.here", "failure"),
        ("ttyt.cangio", "success")]
    assert all(r.address == ADDRESS for r in rows)
    assert all(abs(_aware(r.at) - datetime.now(UTC)) < timedelta(minutes=1) for r in rows)
    known = [r for r in rows if r.username != "nobody.here"]
    assert all(r.account_id is not None and r.role and r.jurisdiction for r in known)
    unknown = rows[2]
    assert unknown.account_id is None and unknown.jurisdiction is None and unknown.detail == "unknown_username"
    after = {o: _counter("khaibao_signins_total", outcome=o) for o in ("success", "failure")}
    assert {o: after[o] - before[o] for o in after} == {"success": 2, "failure": 2}

    lines = logs.events()
    assert [(e["account_event"], e["outcome"]) for e in lines] == [
        ("signin", "success"), ("signin", "failure"), ("signin", "failure"), ("signin", "success")]
    assert all(e["client_address"] == ADDRESS for e in lines)
    assert lines[2]["account_id"] == "unknown" and lines[0]["account_id"] == str(known[0].account_id)
    text = "\n".join(logs.lines)
    for secret in (DEMO_PASSWORD, WRONG, token, ok.cookies[SESSION_COOKIE], "nobody.here"):
        assert secret not in text


async def test_signout_password_change_and_account_actions_are_on_the_record(system, logs, mint):
    client = system.extra["client"]
    cookies = session_of(await sign_in(client, "donvi.chocanthanh", DEMO_PASSWORD))
    token = await csrf_token(client, cookies, "/password")

    async def change(current: str, new: str) -> httpx.Response:
        client.cookies.clear()
        response = await client.post("/password", headers=HTML, cookies=cookies, data={
            "current": current, "new": new, "confirm": new, "csrf_token": token})
        client.cookies.clear()
        return response

    assert (await change(WRONG, NEW_PASSWORD)).status_code == 422        # wrong current password
    assert (await change(DEMO_PASSWORD, "1234567890")).status_code == 422  # refused by the policy
    assert (await change(DEMO_PASSWORD, NEW_PASSWORD)).status_code == 303
    changes = await _events(system, event="password_change")
    assert [(c.outcome, c.detail) for c in changes] == [
        ("failure", "wrong_current"), ("refused", "password_run"), ("success", None)]
    assert all(c.username == "donvi.chocanthanh" and c.address == ADDRESS and c.account_id for c in changes)

    client.cookies.clear()
    out = await client.post("/signout", data={"csrf_token": token}, headers=HTML, cookies=cookies)
    client.cookies.clear()
    assert out.status_code == 303
    [signout] = await _events(system, event="signout")
    assert (signout.username, signout.outcome, signout.address) == ("donvi.chocanthanh", "success", ADDRESS)

    # The district resets, disables and enables the gate staff account of the demo unit.
    district = (await client.post("/api/token", json={"username": "vhtt.cangio", "password": DEMO_PASSWORD})).json()
    bearer = {"authorization": f"Bearer {district['access_token']}"}
    staff = await _account(system, "cong.chocanthanh")
    before = _counter("khaibao_account_events_total", event="account_disabled", outcome="success")
    for action in ("reset", "disable", "enable"):
        answer = await client.post(f"/api/accounts/{staff.id}/{action}", headers=bearer)
        assert answer.status_code == 200, answer.text
    assert _counter("khaibao_account_events_total", event="account_disabled", outcome="success") == before + 1
    for event in ("password_reset", "account_disabled", "account_enabled"):
        [row] = await _events(system, event=event)
        assert (row.username, row.account_id, row.outcome) == ("cong.chocanthanh", staff.id, "success")
        assert row.actor_name == "Phòng Văn hóa và Thông tin huyện Cần Giờ" and row.address == ADDRESS
    events = [(e["account_event"], e["outcome"]) for e in logs.events()]
    for expected in (("password_change", "failure"), ("password_change", "refused"), ("password_change", "success"),
                     ("signout", "success"), ("password_reset", "success"), ("account_disabled", "success"),
                     ("account_enabled", "success")):
        assert expected in events
    text = "\n".join(logs.lines)
    for secret in (DEMO_PASSWORD, WRONG, NEW_PASSWORD, "1234567890", district["access_token"]):
        assert secret not in text


async def _account(system, username: str):  # noqa: ANN001, ANN202
    from services.provisioning.models import Account

    async with system.runtime("provisioning").database.transaction(readonly=True) as session:
        return (await session.execute(select(Account).where(Account.username == username))).scalar_one()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def test_the_city_and_the_districts_read_their_history(system, mint):
    client = system.extra["client"]
    await sign_in(client, "ttyt.cangio", WRONG)          # district 79/787
    await sign_in(client, "ubnd.canthanh", DEMO_PASSWORD)  # commune of 79/787
    await sign_in(client, HOSTILE_USERNAME, WRONG)         # no such account

    def page(role: Role, jurisdiction: str, query: str = "") -> httpx.Response:  # noqa: ANN202
        client.cookies.clear()
        return client.get(f"/signins{query}", headers=HTML,
                          cookies={SESSION_COOKIE: mint.token(role, jurisdiction)})

    city = await page(Role.CITY_DIC, "79")
    assert city.status_code == 200 and city.headers["cache-control"] == "private, no-store"
    assert "Lịch sử đăng nhập" in city.text
    assert "ttyt.cangio" in city.text and "ubnd.canthanh" in city.text and "HYPERLINK" in city.text
    assert ADDRESS in city.text
    district = await page(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    assert district.status_code == 200
    assert "ttyt.cangio" in district.text and "ubnd.canthanh" in district.text
    assert "HYPERLINK" not in district.text  # an unknown username belongs to no district
    other = await page(Role.DISTRICT_FOCAL, OTHER_DISTRICT)
    assert other.status_code == 200 and "ttyt.cangio" not in other.text and "ubnd.canthanh" not in other.text
    # The area filter cannot widen a district's view.
    widened = await page(Role.DISTRICT_FOCAL, OTHER_DISTRICT, f"?area={DEMO_DISTRICT}")
    assert "ttyt.cangio" not in widened.text
    for role in (Role.COMMUNE_FOCAL, Role.HEALTH_OFFICER):
        assert (await page(role, DEMO_DISTRICT)).status_code in (303, 403)
    # Filters: outcome, username, date range.
    failed = await page(Role.CITY_DIC, "79", "?outcome=failure&q=TTYT")
    assert "ttyt.cangio" in failed.text and "ubnd.canthanh" not in failed.text and "HYPERLINK" not in failed.text
    today = datetime.now(UTC).date()
    future = await page(Role.CITY_DIC, "79", f"?from={(today + timedelta(days=2)).isoformat()}")
    assert "ttyt.cangio" not in future.text
    window = await page(Role.CITY_DIC, "79", f"?from={(today - timedelta(days=1)).isoformat()}"
                                             f"&to={(today + timedelta(days=1)).isoformat()}")
    assert "ttyt.cangio" in window.text
    english = await client.get("/signins?lang=en", headers=HTML, cookies={SESSION_COOKIE: mint.token(Role.CITY_DIC)})
    assert "Sign-in history" in english.text

    # The export holds the filtered rows of the caller's jurisdiction, formulas neutralised.
    client.cookies.clear()
    export = await client.get("/signins.xlsx?outcome=failure", cookies={SESSION_COOKIE: mint.token(Role.CITY_DIC)})
    assert export.status_code == 200 and export.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert export.headers["cache-control"] == "private, no-store"
    cells = [c for row in load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True)
             for c in row if c is not None]
    assert "ttyt.cangio" in cells and "ubnd.canthanh" not in cells
    assert "'" + HOSTILE_USERNAME in cells and HOSTILE_USERNAME not in cells
    client.cookies.clear()
    theirs = await client.get("/signins.xlsx", cookies={SESSION_COOKIE: mint.token(Role.DISTRICT_FOCAL, OTHER_DISTRICT)})
    rows = list(load_workbook(io.BytesIO(theirs.content)).active.iter_rows(values_only=True))
    assert not any("ttyt.cangio" in row or "ubnd.canthanh" in row for row in rows)


async def test_old_history_is_pruned(system):
    from services.provisioning import signins

    runtime = system.runtime("provisioning")
    async with runtime.database.transaction() as session:
        await signins.record(session, outcome="failure", username="cu.qua", address=ADDRESS,
                             at=datetime.now(UTC) - timedelta(days=181))
        await signins.record(session, outcome="failure", username="moi.day", address=ADDRESS,
                             at=datetime.now(UTC) - timedelta(days=179))
    assert await signins.retention_pass(runtime) == 1
    assert [r.username for r in await _events(system)] == ["moi.day"]


async def test_the_address_is_the_one_a_trusted_proxy_forwards(system):
    """As under ``khaibao serve`` with KHAIBAO_TRUSTED_PROXIES: uvicorn's proxy-headers
    middleware in front of the app. Only the trusted proxy's X-Forwarded-For names the client."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app = ProxyHeadersMiddleware(system.apps["provisioning"], trusted_hosts=["10.0.0.2"])
    forwarded = {**HTML, "x-forwarded-for": "198.51.100.23"}
    for peer in ("10.0.0.2", "192.0.2.50"):
        transport = httpx.ASGITransport(app=app, client=(peer, 40000), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://provisioning.test") as client:
            response = await client.post("/signin", headers=forwarded,
                                         data={"username": "ubnd.canthanh", "password": WRONG, "next": "/"})
            assert response.status_code == 401
    assert [r.address for r in await _events(system, event="signin")] == ["198.51.100.23", "192.0.2.50"]
