"""Passwords are argon2id hashes, never logged, never stored or carried in clear.

Every log record of the process is captured (at DEBUG) while accounts are issued,
e-mailed, opened from the Support Channel, reset, created for gate staff, signed in with
and changed; no password may appear in them, nor in the raw database files of provisioning
and notification, nor on the bus (where the password travels sealed for notification only).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select

from libs.common import sealed
from libs.common.auth import Role
from libs.common.events.provisioning import credentials_context
from libs.common.observability import JsonFormatter

from tests.services.conftest import csrf_token, signed_in

from .conftest import HTML, Accounts, eventually, wait_for_mail
from .support import DEMO_DISTRICT, batch, credentials_in, unit

# aiosmtpd is the receiving server of the test, not part of the system: its own logs are
# the mail relay's business (and it logs protocol lines only).
FOREIGN_LOGGERS = ("mail.log",)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(FOREIGN_LOGGERS):
            return
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def captured():
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


async def test_passwords_are_hashed_and_never_logged_or_stored_in_clear(accounts: Accounts, captured, keys):
    secrets: list[str] = []
    batch_id = await accounts.batch_arrives(batch([
        unit("Trường THPT Cần Thạnh", email="thpt.canthanh@example.vn"), unit("Chợ Long Hòa")]))
    root = logging.getLogger()
    assert captured in root.handlers and root.level == logging.DEBUG  # the app's own setup kept our handler
    await accounts.issue(batch_id)

    # E-mailed password.
    [mail] = await wait_for_mail(accounts.mail, 1)
    username, emailed = credentials_in(mail)
    secrets.append(emailed)

    # Password opened from the Support Channel.
    district_html = accounts.html(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    district = accounts.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT)

    async def waiting():
        rows = (await accounts.notification.get("/api/support/threads/787/credentials", headers=district)).json()
        return rows or None

    [row] = await eventually(waiting, what="credentials in the channel")
    opened = await accounts.notification.post(f"/support/credentials/{row['id']}/open", headers=district_html,
                                              data={"confirm": "yes"})
    secrets.append(re.search(r'id="credential-password">([^<]+)<', opened.text).group(1))

    # Sign in with the e-mailed one, change it.
    cookie = await signed_in(accounts.provisioning, username, emailed)
    token = await csrf_token(accounts.provisioning, cookie, "/password")
    chosen = "Mat-khau-rieng-cua-truong-2021"
    secrets.append(chosen)
    changed = await accounts.provisioning.post("/password", headers=HTML, cookies=cookie,
                                               data={"csrf_token": token, "current": emailed, "new": chosen, "confirm": chosen})
    accounts.provisioning.cookies.clear()
    assert changed.status_code == 303

    # A gate staff account (password shown once) and its reset by the unit administrator.
    city = accounts.headers(Role.CITY_DIC)
    school = next(u for u in (await accounts.provisioning.get("/api/units", headers=city)).json()
                  if u["name"] == "Trường THPT Cần Thạnh")
    admin = accounts.headers(Role.UNIT_ADMIN, school["commune_path"], unit_id=school["id"])
    staff = (await accounts.provisioning.post(f"/api/units/{school['id']}/staff", headers=admin,
                                              json={"name": "Phạm Thị Lan"})).json()
    secrets.append(staff["password"])
    again = (await accounts.provisioning.post(f"/api/accounts/{staff['account_id']}/reset", headers=admin)).json()
    secrets.append(again["password"])
    assert again["username"] == staff["username"] and again["password"] != staff["password"]
    page = await accounts.provisioning.post(f"/units/{school['id']}/staff", headers={**HTML, **admin},
                                            data={"name": "Võ Minh Tuấn"})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    secrets.append(re.search(r'id="one-time-password">([^<]+)<', page.text).group(1))

    # A reset by the city, e-mailed.
    detail = (await accounts.provisioning.get(f"/api/units/{school['id']}", headers=city)).json()
    admin_account = next(a for a in detail["accounts"] if a["role"] == "unit_admin")
    assert (await accounts.provisioning.post(f"/api/accounts/{admin_account['id']}/reset", headers=city)
            ).status_code == 200
    reset_mail = (await wait_for_mail(accounts.mail, 2))[1]
    secrets.append(credentials_in(reset_mail)[1])
    # Wrong passwords are secrets too.
    secrets.append("Sai-mat-khau-31415")
    await accounts.provisioning.post("/api/token", json={"username": username, "password": secrets[-1]})

    # Hashes: argon2id; the initial ones with the lighter cost, a chosen one with the full cost.
    from services.provisioning.models import Account

    async with accounts.system.runtime("provisioning").database.transaction(readonly=True) as session:
        rows = {a.username: a for a in (await session.execute(select(Account))).scalars()}
    assert all(a.password_hash.startswith("$argon2id$") for a in rows.values())
    assert rows[username].password_hash.startswith("$argon2id$v=19$m=12288,t=1,p=1$")  # reset: initial again
    assert rows[staff["username"]].password_hash.startswith("$argon2id$v=19$m=12288,t=1,p=1$")
    hasher = PasswordHasher()
    hasher.verify(rows[staff["username"]].password_hash, again["password"])
    with pytest.raises(VerificationError):
        hasher.verify(rows[staff["username"]].password_hash, staff["password"])

    text = captured.text
    assert len(captured.lines) > 20, "nothing was logged: the check would prove nothing"
    assert "issue job" in text and "opened by account" in text
    for secret in secrets:
        assert secret not in text, "a password appears in the logs"

    # The raw files: databases of provisioning and notification, the bus.
    data_dir = Path(keys.data_dir)
    files = [p for p in data_dir.iterdir() if p.name.endswith((".db", ".db-wal"))]
    assert {"provisioning.db", "notification.db", "bus.db"} <= {p.name for p in files}
    for path in files:
        raw = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in raw, f"a password in clear in {path.name}"


async def test_a_chosen_password_gets_the_full_argon2_cost(accounts: Accounts):
    batch_id = await accounts.batch_arrives(batch([unit("Trạm y tế Cần Thạnh", email="tramyte@example.vn")]))
    await accounts.issue(batch_id)
    [mail] = await wait_for_mail(accounts.mail, 1)
    username, password = credentials_in(mail)
    cookie = await signed_in(accounts.provisioning, username, password)
    token = await csrf_token(accounts.provisioning, cookie, "/password")
    for new, message in (("ngan", "ít nhất 10 ký tự"), (username + "-2024", "không được chứa tên đăng nhập")):
        refused = await accounts.provisioning.post("/password", headers=HTML, cookies=cookie,
                                                   data={"csrf_token": token, "current": password, "new": new, "confirm": new})
        accounts.provisioning.cookies.clear()
        assert refused.status_code == 422 and message in refused.text
    await accounts.provisioning.post("/password", headers=HTML, cookies=cookie, data={"csrf_token": token,
        "current": password, "new": "Tram-y-te-an-toan", "confirm": "Tram-y-te-an-toan"})
    accounts.provisioning.cookies.clear()
    from services.provisioning.models import Account

    async with accounts.system.runtime("provisioning").database.transaction(readonly=True) as session:
        account = (await session.execute(select(Account).where(Account.username == username))).scalar_one()
    assert account.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert account.must_change_password is False and account.password_changed_at is not None


def test_sealed_boxes_open_only_with_the_right_key_and_context(tmp_path):
    private, public = tmp_path / "k" / "private.pem", tmp_path / "k" / "public.pem"
    sealed.ensure_key_pair(private, public)
    sealed.ensure_key_pair(private, public)  # idempotent: the same pair
    key = sealed.load_private(private)
    raw_public = sealed.raw_public(sealed.load_public(public))
    context = credentials_context("acc-1", "cred-1")
    box = sealed.seal(raw_public, "mật-khẩu-bí-mật".encode(), context)
    assert "mật" not in box and box.startswith(f"v1.{sealed.key_id(raw_public)}.")
    assert sealed.open_box(key, box, context).decode() == "mật-khẩu-bí-mật"
    with pytest.raises(sealed.SealedBoxError):
        sealed.open_box(key, box, credentials_context("acc-2", "cred-1"))  # moved to another account
    other = tmp_path / "o"
    sealed.ensure_key_pair(other / "private.pem", other / "public.pem")
    with pytest.raises(sealed.SealedBoxError, match="another key"):
        sealed.open_box(sealed.load_private(other / "private.pem"), box, context)
    tampered = box[:-4] + ("AAAA" if not box.endswith("AAAA") else "BBBB")
    with pytest.raises(sealed.SealedBoxError):
        sealed.open_box(key, tampered, context)
    assert oct(private.stat().st_mode & 0o777) == "0o600"
