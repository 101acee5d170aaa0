"""Sign-in, throttling, first password change, sign-out and tokens, through real HTTP.

Provisioning (with the demo accounts) and intake run in-process; the session cookie that
provisioning sets is the one the intake console accepts.
"""
from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from urllib.parse import urljoin, urlsplit

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from libs.common.auth import SESSION_COOKIE, Role
from libs.common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD
from libs.common.observability import JsonFormatter

from .conftest import DEMO_COMMUNE, HTML, SERVICE_URLS, csrf_in, run_services, service_url, sign_in

COMMUNE_USER = "ubnd.canthanh"
WRONG = "Tên đăng nhập hoặc mật khẩu không đúng"


@pytest.fixture
async def system(make_settings):
    settings = {"provisioning": make_settings("provisioning", demo=True, log_level="DEBUG"),
                "intake": make_settings("intake", log_level="DEBUG")}
    async with run_services(settings) as running:
        yield running


@pytest.fixture
def provisioning(system):
    return system["provisioning"]


class Capture(logging.Handler):
    """Every log record of the process, formatted as the services format them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def captured_logs():
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


async def _new_account(system, username: str, password: str, *, must_change: bool,
                       role: Role = Role.COMMUNE_FOCAL, jurisdiction: str = DEMO_COMMUNE) -> None:
    from services.provisioning.service import create_account

    async with system.runtime("provisioning").database.transaction() as session:
        await create_account(session, username=username, name="Cán bộ mới", role=role, jurisdiction=jurisdiction,
                             password=password, must_change_password=must_change)


async def _account(system, username: str):
    from services.provisioning.models import Account

    async with system.runtime("provisioning").database.transaction(readonly=True) as session:
        return (await session.execute(select(Account).where(Account.username == username))).scalar_one()


def _session_cookie(response) -> tuple[str, SimpleCookie]:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")]
    assert len(headers) == 1, response.headers.get_list("set-cookie")
    cookie = SimpleCookie()
    cookie.load(headers[0])
    return headers[0], cookie


async def test_signin_page_is_vietnamese(provisioning):
    page = await provisioning.get("/signin", headers=HTML)
    assert page.status_code == 200
    assert "Đăng nhập" in page.text and "Tên đăng nhập" in page.text and "Mật khẩu" in page.text
    assert 'autocomplete="current-password"' in page.text


async def test_signin_sets_an_httponly_cookie_and_goes_back(system, provisioning):
    target = service_url("intake") + "/"
    response = await sign_in(provisioning, COMMUNE_USER, DEMO_PASSWORD, target)
    assert response.status_code == 303
    assert response.headers["location"] == target
    raw, cookie = _session_cookie(response)
    morsel = cookie[SESSION_COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) > 0
    assert "secure" not in raw.lower()  # plain http in the local run; secure in production only
    token = morsel.value
    # The cookie opens the intake console (another service, same key).
    page = await system["intake"].get("/", headers=HTML, cookies={SESSION_COOKIE: token})
    assert page.status_code == 200
    assert "UBND thị trấn Cần Thạnh" in page.text and "Thị trấn Cần Thạnh" in page.text


async def test_signin_redirects_to_relative_next(provisioning):
    response = await sign_in(provisioning, COMMUNE_USER, DEMO_PASSWORD, "/help?x=1")
    assert response.status_code == 303 and response.headers["location"] == "/help?x=1"
    response = await sign_in(provisioning, COMMUNE_USER, DEMO_PASSWORD, None)
    assert response.status_code == 303 and response.headers["location"] == "/"


OPEN_REDIRECTS = [
    "http://evil.example/", "https://evil.example/signin", "//evil.example/x", "///evil.example",
    "/\\evil.example", "\\\\evil.example", "https://intake.test@evil.example/", "http://evil.example/?http://intake.test",
    "javascript:alert(document.cookie)", "data:text/html,<script>alert(1)</script>", "http:evil.example",
    "HTTPS://EVIL.EXAMPLE", " http://evil.example", "\thttp://evil.example", "/\t/evil.example",
    "/\n/evil.example", "http://intake.test.evil.example/", "ftp://intake.test/", "http://[::1]:80/",
]


async def test_open_redirects_are_refused(provisioning):
    ours = {urlsplit(u).netloc for u in SERVICE_URLS.values()} | {"landing.test"}
    for target in OPEN_REDIRECTS:
        response = await sign_in(provisioning, COMMUNE_USER, DEMO_PASSWORD, target)
        assert response.status_code == 303
        location = response.headers["location"]
        assert location == "/", (target, location)
        resolved = urlsplit(urljoin(service_url("provisioning") + "/signin", location))
        assert resolved.scheme == "http" and resolved.netloc in ours, (target, location)
        # The sign-in page does not carry the hostile target in its form either.
        page = await provisioning.get("/signin", params={"next": target}, headers=HTML)
        assert page.status_code == 200
        hidden = re.search(r'<input type="hidden" name="next" value="([^"]*)">', page.text)
        assert hidden is not None and hidden.group(1) == "/", (target, hidden)


async def test_wrong_password_page(provisioning):
    secret = "Sai-Mat-Khau-<b>-9431"
    response = await sign_in(provisioning, COMMUNE_USER, secret, service_url("intake") + "/")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert WRONG in response.text
    assert secret not in response.text and "Sai-Mat-Khau" not in response.text
    assert SESSION_COOKIE + "=" not in response.headers.get("set-cookie", "")
    assert 'value="ubnd.canthanh"' in response.text  # the username is kept, the password is not
    # An unknown user gets the very same message (no account enumeration).
    unknown = await sign_in(provisioning, "nobody.here", secret)
    assert unknown.status_code == 401 and WRONG in unknown.text


def _signins() -> dict[str, float]:
    return {o: REGISTRY.get_sample_value("khaibao_signins_total", {"service": "provisioning", "outcome": o}) or 0.0
            for o in ("success", "failure", "throttled")}


async def test_failures_slow_the_guesser_down_not_the_account(system, provisioning):
    await _new_account(system, "khoa.thu", "dung-mat-khau-123", must_change=False)
    before = _signins()
    for attempt in range(5):
        response = await sign_in(provisioning, "khoa.thu", f"sai-{attempt}")
        assert response.status_code == 401 and WRONG in response.text, attempt
    # From this address (the test client's), even the right password now gets the same
    # answer as a wrong one, unchecked: on the form and on the token API.
    response = await sign_in(provisioning, "khoa.thu", "dung-mat-khau-123")
    assert response.status_code == 401 and WRONG in response.text and "khóa" not in response.text
    assert SESSION_COOKIE + "=" not in response.headers.get("set-cookie", "")
    token = await provisioning.post("/api/token", json={"username": "khoa.thu", "password": "dung-mat-khau-123"})
    assert token.status_code == 401 and WRONG in token.json()["detail"]
    # Other accounts are not affected (tests/reliability/test_signin_abuse.py: nor the owner elsewhere).
    assert (await sign_in(provisioning, COMMUNE_USER, DEMO_PASSWORD)).status_code == 303
    # Counted by outcome (console and API alike), never by user name: 4 verified failures
    # (3 free, the 4th starts the delay), then refused unverified.
    assert {o: n - before[o] for o, n in _signins().items()} == {"success": 1, "failure": 4, "throttled": 3}
    samples = [s for m in REGISTRY.collect() if m.name == "khaibao_signins" for s in m.samples]
    assert samples and all(set(s.labels) <= {"service", "outcome"} for s in samples)


async def test_failures_below_the_limit_are_forgiven_by_a_success(system, provisioning):
    await _new_account(system, "quen.mk", "dung-mat-khau-456", must_change=False)
    for _ in range(3):
        for attempt in range(3):
            assert (await sign_in(provisioning, "quen.mk", f"sai-{attempt}")).status_code == 401
        assert (await sign_in(provisioning, "quen.mk", "dung-mat-khau-456")).status_code == 303


async def test_new_account_must_change_its_password(system, provisioning):
    await _new_account(system, "moi.capnhat", "mat-khau-ban-dau-1", must_change=True)
    response = await sign_in(provisioning, "moi.capnhat", "mat-khau-ban-dau-1", service_url("intake") + "/")
    assert response.status_code == 303
    assert response.headers["location"] == "/password"
    _, cookie = _session_cookie(response)
    first = {SESSION_COOKIE: cookie[SESSION_COOKIE].value}

    # Normal pages refuse it: the intake console sends the browser to the password page.
    page = await system["intake"].get("/", headers=HTML, cookies=first)
    assert page.status_code == 303 and page.headers["location"] == service_url("provisioning") + "/password"
    api = await system["intake"].get("/api/registrations", cookies=first)
    assert api.status_code == 403
    home = await provisioning.get("/", headers=HTML, cookies=first)
    assert home.status_code == 303 and home.headers["location"].endswith("/password")

    form = await provisioning.get("/password", headers=HTML, cookies=first)
    assert form.status_code == 200
    assert "Đây là lần đăng nhập đầu tiên" in form.text
    token = csrf_in(form.text)

    # Mistakes are explained and change nothing.
    for current, new, confirm, message in (
            ("mat-khau-ban-dau-1", "mat-khau-moi-2021", "mat-khau-khac-2021", "không khớp"),
            ("sai-mat-khau", "mat-khau-moi-2021", "mat-khau-moi-2021", "hiện tại không đúng"),
            ("mat-khau-ban-dau-1", "ngan", "ngan", "ít nhất 10 ký tự"),
            ("mat-khau-ban-dau-1", "mat-khau-ban-dau-1", "mat-khau-ban-dau-1", "khác mật khẩu cũ")):
        provisioning.cookies.clear()
        failed = await provisioning.post("/password", data={"current": current, "new": new, "confirm": confirm,
                                                                 "csrf_token": token},
                                         headers=HTML, cookies=first)
        assert failed.status_code == 422, message
        assert message in failed.text
        assert new not in failed.text or new == current == "mat-khau-ban-dau-1" and new not in failed.text
    assert (await _account(system, "moi.capnhat")).must_change_password is True

    provisioning.cookies.clear()
    changed = await provisioning.post(
        "/password", data={"current": "mat-khau-ban-dau-1", "new": "mat-khau-moi-2021", "confirm": "mat-khau-moi-2021",
                          "csrf_token": token},
        headers=HTML, cookies=first)
    provisioning.cookies.clear()
    assert changed.status_code == 303 and changed.headers["location"] == "/?changed=1"
    _, cookie = _session_cookie(changed)
    second = {SESSION_COOKIE: cookie[SESSION_COOKIE].value}
    assert (await system["intake"].get("/", headers=HTML, cookies=second)).status_code == 200
    done = await provisioning.get("/?changed=1", headers=HTML, cookies=second)
    assert done.status_code == 200 and "Đã đổi mật khẩu" in done.text

    account = await _account(system, "moi.capnhat")
    assert account.must_change_password is False
    assert (await sign_in(provisioning, "moi.capnhat", "mat-khau-ban-dau-1")).status_code == 401
    again = await sign_in(provisioning, "moi.capnhat", "mat-khau-moi-2021", "/")
    assert again.status_code == 303 and again.headers["location"] == "/"


async def test_signout_clears_the_cookie(system, provisioning):
    response = await sign_in(provisioning, COMMUNE_USER, DEMO_PASSWORD)
    _, cookie = _session_cookie(response)
    provisioning.cookies.set(SESSION_COOKIE, cookie[SESSION_COOKIE].value, domain="provisioning.test")
    home = await provisioning.get("/", headers=HTML)
    assert home.status_code == 200
    # Another site cannot sign the browser out: the form must carry the page's token.
    assert (await provisioning.post("/signout", headers=HTML)).status_code == 403
    token = csrf_in(home.text)

    out = await provisioning.post("/signout", data={"csrf_token": token}, headers=HTML)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    raw, cleared = _session_cookie(out)
    morsel = cleared[SESSION_COOKIE]
    assert morsel.value in ("", '""')
    assert morsel["max-age"] == "0" or "1970" in morsel["expires"]
    assert morsel["path"] == "/"
    # The client honoured it: the next visit is sent to the sign-in page.
    assert SESSION_COOKIE not in provisioning.cookies
    again = await provisioning.get("/", headers=HTML)
    assert again.status_code == 303 and "/signin" in again.headers["location"]
    provisioning.cookies.clear()


async def test_token_api(system, provisioning):
    response = await provisioning.post("/api/token", json={"username": COMMUNE_USER, "password": DEMO_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800 and body["must_change_password"] is False
    bearer = {"authorization": f"Bearer {body['access_token']}"}
    me = await provisioning.get("/api/me", headers=bearer)
    assert me.status_code == 200
    assert me.json() | {"account_id": None} == {
        "account_id": None, "username": COMMUNE_USER, "name": "UBND thị trấn Cần Thạnh",
        "role": "commune_focal", "jurisdiction": DEMO_COMMUNE, "unit_id": None}
    assert (await system["intake"].get("/api/registrations", headers=bearer)).status_code == 200
    # Usernames are case-insensitive and trimmed; passwords are not.
    upper = await provisioning.post("/api/token", json={"username": " UBND.CanThanh ", "password": DEMO_PASSWORD})
    assert upper.status_code == 200
    assert (await provisioning.post("/api/token", json={"username": COMMUNE_USER,
                                                         "password": DEMO_PASSWORD.upper()})).status_code == 401

    wrong = await provisioning.post("/api/token", json={"username": COMMUNE_USER, "password": "khong-dung"})
    assert wrong.status_code == 401 and WRONG in wrong.json()["detail"]
    assert "khong-dung" not in wrong.text
    # A request the schema refuses does not echo the password either.
    long_secret = "bi-mat-" + "x" * 300
    invalid = await provisioning.post("/api/token", json={"username": COMMUNE_USER, "password": long_secret})
    assert invalid.status_code == 422
    assert "bi-mat-" not in invalid.text
    # Each role of the demo gets a token carrying its role and jurisdiction.
    for username, _name, role, jurisdiction in DEMO_ACCOUNTS:
        token = await provisioning.post("/api/token", json={"username": username, "password": DEMO_PASSWORD})
        assert token.status_code == 200, username
        me = await provisioning.get("/api/me", headers={"authorization": f"Bearer {token.json()['access_token']}"})
        assert (me.json()["role"], me.json()["jurisdiction"]) == (str(role), jurisdiction)


async def test_passwords_are_stored_as_argon2_hashes(system, provisioning):
    await _new_account(system, "bam.argon", "mat-khau-argon-77", must_change=True)
    from services.provisioning.models import Account

    async with system.runtime("provisioning").database.transaction(readonly=True) as session:
        rows = (await session.execute(select(Account.username, Account.password_hash))).all()
    assert len(rows) == len(DEMO_ACCOUNTS) + 1
    for username, password_hash in rows:
        assert password_hash.startswith("$argon2"), username
        assert DEMO_PASSWORD not in password_hash and "mat-khau-argon-77" not in password_hash
    # The raw database file holds neither password in clear.
    database_file = system.settings["provisioning"].database_url.split("///", 1)[1]
    raw = open(database_file, "rb").read()  # noqa: SIM115
    assert DEMO_PASSWORD.encode() not in raw and b"mat-khau-argon-77" not in raw


async def test_passwords_never_appear_in_logs(system, provisioning, captured_logs):
    secrets = ["Mat-Khau-Sai-314159", DEMO_PASSWORD, "mat-khau-dau-tien-1", "mat-khau-thu-hai-2021"]
    await _new_account(system, "nhat.ky", "mat-khau-dau-tien-1", must_change=True)
    await sign_in(provisioning, COMMUNE_USER, "Mat-Khau-Sai-314159")
    await sign_in(provisioning, "nobody.here", "Mat-Khau-Sai-314159")
    await sign_in(provisioning, COMMUNE_USER, DEMO_PASSWORD)
    await provisioning.post("/api/token", json={"username": COMMUNE_USER, "password": DEMO_PASSWORD})
    await provisioning.post("/api/token", json={"username": COMMUNE_USER, "password": "Mat-Khau-Sai-314159"})
    await provisioning.post("/api/token", json={"username": COMMUNE_USER, "password": "Mat-Khau-Sai-314159" * 20})
    await provisioning.post("/signin", content=b"username=nhat.ky&password=Mat-Khau-Sai-314159%ZZ",
                            headers={**HTML, "content-type": "application/x-www-form-urlencoded"})
    first = await sign_in(provisioning, "nhat.ky", "mat-khau-dau-tien-1")
    _, cookie = _session_cookie(first)
    provisioning.cookies.clear()
    form = await provisioning.get("/password", headers=HTML, cookies={SESSION_COOKIE: cookie[SESSION_COOKIE].value})
    token = csrf_in(form.text)
    provisioning.cookies.clear()
    changed = await provisioning.post(
        "/password", headers=HTML, cookies={SESSION_COOKIE: cookie[SESSION_COOKIE].value},
        data={"current": "mat-khau-dau-tien-1", "new": "mat-khau-thu-hai-2021", "confirm": "mat-khau-thu-hai-2021",
              "csrf_token": token})
    provisioning.cookies.clear()
    assert changed.status_code == 303
    for _ in range(6):  # through the throttle too
        await sign_in(provisioning, "nhat.ky", "Mat-Khau-Sai-314159")

    text = captured_logs.text
    assert len(captured_logs.lines) > 10, "nothing was logged: the check would prove nothing"
    for secret in secrets:
        assert secret not in text, f"a password appears in the logs: {secret}"
