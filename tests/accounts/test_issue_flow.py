"""A forwarded batch becomes accounts, venues and delivered credentials (circular 1.3, step 3).

intake.batch.forwarded (through a real outbox and bus) -> provisioning keeps the batch ->
the city issues it -> one unit administrator and a venue per gate for each unit ->
units with an e-mail get a Vietnamese e-mail at a real SMTP server (aiosmtpd), the others
land in the district's Support Channel -> the district opens them (logged) and hands them
over -> provisioning shows where each unit's credentials are. The e-mailed password signs
in, and must be changed first.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from libs.common.auth import Role

from tests.services.conftest import csrf_token, session_of, sign_in

from .conftest import HTML, Accounts, eventually, wait_for_mail
from .support import DEMO_DISTRICT, BatchSender, MailServer, batch, credentials_in, unit

DIACRITICS = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.IGNORECASE)


async def _credentials_status(accounts: Accounts, unit_id: str) -> str | None:
    detail = await accounts.provisioning.get(f"/api/units/{unit_id}", headers=accounts.headers(Role.CITY_DIC))
    admin = [a for a in detail.json()["accounts"] if a["role"] == "unit_admin"]
    return admin[0]["credentials_status"] if admin else None


async def test_a_batch_is_issued_and_its_credentials_delivered(accounts: Accounts):
    with_mail = unit("Trường Tiểu học Cần Thạnh", email="hieutruong.canthanh@example.vn", gates=3,
                     contact_name="Lê Thị Thu Hương")
    without_mail = unit("Chợ Đồng Hòa", gates=1, unit_type="market")
    event = batch([with_mail, without_mail], reference="LO-CG-0001")
    batch_id = await accounts.batch_arrives(event)

    job = await accounts.issue(batch_id)
    assert job["status"] == "done" and (job["done"], job["skipped"], job["failed"]) == (2, 0, 0)
    assert job["with_email"] == 1 and job["total"] == 2

    # One unit, one administrator, one venue per declared gate, each with its own code.
    city = accounts.headers(Role.CITY_DIC)
    detail = (await accounts.provisioning.get(f"/api/batches/{batch_id}", headers=city)).json()
    issued = {u["unit_name"]: u for u in detail["units"]}
    assert {u["status"] for u in issued.values()} == {"issued"}
    school = (await accounts.provisioning.get(f"/api/units/{issued['Trường Tiểu học Cần Thạnh']['unit_id']}",
                                              headers=city)).json()
    assert [v["name"] for v in school["venues"]] == ["Cổng 1", "Cổng 2", "Cổng 3"]
    assert len({v["code"] for v in school["venues"]}) == 3
    assert all(re.fullmatch(r"[2-9A-HJ-NP-Z]{10}", v["code"]) for v in school["venues"])
    [admin] = school["accounts"]
    assert admin["role"] == "unit_admin" and admin["must_change_password"] is True

    # The e-mail reaches the real SMTP server with its Vietnamese subject and body intact.
    [mail] = await wait_for_mail(accounts.mail, 1)
    assert mail["Subject"] == "Tài khoản Hệ thống khai báo y tế điện tử – Trường Tiểu học Cần Thạnh"
    assert mail["To"].addresses[0].display_name == "Lê Thị Thu Hương"
    assert mail["To"].addresses[0].addr_spec == "hieutruong.canthanh@example.vn"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "Kính gửi Lê Thị Thu Hương," in text
    assert "Sở Thông tin và Truyền thông Thành phố Hồ Chí Minh đã cấp tài khoản quản trị cho Trường Tiểu học Cần Thạnh" in text
    assert "Ở lần đăng nhập đầu tiên, hệ thống sẽ yêu cầu đổi mật khẩu" in text
    assert "http://provisioning.test/signin" in text and "http://provisioning.test/help/unit" in text
    assert "http://provisioning.test/posters" in text
    assert "<strong>Trường Tiểu học Cần Thạnh</strong>" in html and 'href="http://provisioning.test/posters"' in html
    username, password = credentials_in(mail)
    assert username == admin["username"]
    assert re.fullmatch(r"([2-9a-hjkmnp-z]{5}-){3}[2-9a-hjkmnp-z]{5}", password)
    assert password in html
    await eventually(lambda: _status_is(accounts, school["id"], "emailed"), what="the e-mailed status")

    # The e-mailed password signs in, and nothing else opens until it is changed.
    signin = await sign_in(accounts.provisioning, username, password, next_url=None)
    assert signin.status_code == 303 and signin.headers["location"] == "/password"
    cookie = session_of(signin)
    blocked = await accounts.provisioning.get("/", headers=HTML, cookies=cookie)
    assert blocked.status_code == 303 and blocked.headers["location"].endswith("/password")
    token = await csrf_token(accounts.provisioning, cookie, "/password")
    changed = await accounts.provisioning.post("/password", headers=HTML, cookies=cookie, data={"csrf_token": token,
        "current": password, "new": "Cong-truong-2021!", "confirm": "Cong-truong-2021!"})
    accounts.provisioning.cookies.clear()
    assert changed.status_code == 303
    token = await accounts.provisioning.post("/api/token", json={"username": username, "password": "Cong-truong-2021!"})
    assert token.status_code == 200 and token.json()["must_change_password"] is False
    again = await accounts.provisioning.post("/api/token", json={"username": username, "password": password})
    assert again.status_code == 401

    # The unit without e-mail: its credentials wait in the district's Support Channel.
    market_id = issued["Chợ Đồng Hòa"]["unit_id"]
    await eventually(lambda: _status_is(accounts, market_id, "in_channel"), what="the credentials in the channel")
    district = accounts.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    threads = (await accounts.notification.get("/api/support/threads", headers=district)).json()
    assert threads == [{"district_path": DEMO_DISTRICT, "unread": 2, "waiting_credentials": 1,
                        "last_message_at": threads[0]["last_message_at"]}]
    [waiting] = (await accounts.notification.get("/api/support/threads/787/credentials", headers=district)).json()
    assert waiting["unit_name"] == "Chợ Đồng Hòa" and waiting["channel_reason"] == "no_email"
    assert waiting["status"] == "channel" and "password" not in waiting and "sealed" not in waiting

    # Opening shows the password once, logs who opened it, and hands it to nobody else.
    district_html = accounts.html(Role.DISTRICT_FOCAL, DEMO_DISTRICT, username="vhtt.cangio")
    confirm = await accounts.notification.get(f"/support/credentials/{waiting['id']}", headers=district_html)
    assert confirm.status_code == 200 and "Mở và xem mật khẩu" in confirm.text
    refused = await accounts.notification.post(f"/support/credentials/{waiting['id']}/open", headers=district_html,
                                               data={})
    assert refused.status_code == 303 and "error=confirm_needed" in refused.headers["location"]
    opened = await accounts.notification.post(f"/support/credentials/{waiting['id']}/open", headers=district_html,
                                              data={"confirm": "yes"})
    assert opened.status_code == 200 and opened.headers["cache-control"] == "no-store"
    market_password = re.search(r'id="credential-password">([^<]+)<', opened.text).group(1)
    market_username = re.search(r'id="credential-username">([^<]+)<', opened.text).group(1)
    twice = await accounts.notification.post(f"/support/credentials/{waiting['id']}/open", headers=district_html,
                                             data={"confirm": "yes"})
    assert twice.status_code == 303 and "error=already_opened" in twice.headers["location"]
    log = await accounts.notification.get(f"/support/credentials/{waiting['id']}", headers=district_html)
    assert "Người kiểm thử district_focal đã mở" in log.text
    handed = await accounts.notification.post(f"/support/credentials/{waiting['id']}/handed-over",
                                              headers=district_html, data={"confirm": "yes"})
    assert handed.status_code == 303
    await eventually(lambda: _status_is(accounts, market_id, "handed_over"), what="the handed-over status")
    market_token = await accounts.provisioning.post("/api/token", json={"username": market_username,
                                                                         "password": market_password})
    assert market_token.status_code == 200 and market_token.json()["must_change_password"] is True

    # The district's thread shows the batch (with its spreadsheet), the issuance and the credentials.
    messages = (await accounts.notification.get("/api/support/threads/787/messages", headers=district)).json()
    assert sorted(m["kind"] for m in messages) == ["batch", "credentials", "issuance"]
    page = await accounts.notification.get("/support/787", headers=district_html)
    assert page.status_code == 200 and DIACRITICS.search(page.text)
    assert "Đã chuyển lô LO-CG-0001 lên Sở: 2 đơn vị, trong đó 1 đơn vị có thư điện tử." in page.text
    assert "Sở đã cấp tài khoản cho lô LO-CG-0001: 2 đơn vị, trong đó 1 đơn vị nhận qua thư điện tử." in page.text


async def _status_is(accounts: Accounts, unit_id: str, status: str) -> bool:
    return await _credentials_status(accounts, unit_id) == status


async def test_one_unit_at_a_time_and_never_twice(accounts: Accounts):
    first, second = unit("Công ty TNHH Sài Gòn Xanh", email="lienhe@saigonxanh.example.vn"), unit("Siêu thị Co.op Cần Giờ")
    batch_id = await accounts.batch_arrives(batch([first, second]))
    job = await accounts.issue(batch_id, str(first.registration_id))
    assert (job["done"], job["total"]) == (1, 1)
    city = accounts.headers(Role.CITY_DIC)
    states = {u["unit_name"]: u["status"] for u in
              (await accounts.provisioning.get(f"/api/batches/{batch_id}", headers=city)).json()["units"]}
    assert states == {"Công ty TNHH Sài Gòn Xanh": "issued", "Siêu thị Co.op Cần Giờ": "pending"}
    # The same unit again: nothing to issue; the rest of the batch: only the pending unit.
    again = await accounts.provisioning.post(f"/api/batches/{batch_id}/issue", headers=city,
                                             json={"registration_id": str(first.registration_id)})
    assert again.status_code == 409 and "không còn đơn vị nào chờ cấp" in again.json()["detail"]
    job = await accounts.issue(batch_id)
    assert (job["done"], job["skipped"]) == (1, 0)
    # The same unit forwarded again in a later batch is recognised and skipped.
    repeat = await accounts.batch_arrives(batch([unit("Công ty TNHH Sài Gòn Xanh",
                                                      registration_id=first.registration_id)]))
    job = await accounts.issue(repeat)
    assert (job["done"], job["skipped"]) == (0, 1)
    units = (await accounts.provisioning.get("/api/units", headers=city)).json()
    assert sorted(u["name"] for u in units) == ["Công ty TNHH Sài Gòn Xanh", "Siêu thị Co.op Cần Giờ"]


async def test_a_large_batch_in_parts(accounts: Accounts):
    """Intake sends a large batch as several events: both parts end up in one batch."""
    import uuid

    batch_id = uuid.uuid4()
    part_one = [unit(f"Cửa hàng thiết yếu số {i}", unit_type="essential_shop") for i in range(1, 4)]
    part_two = [unit(f"Cửa hàng thiết yếu số {i}", unit_type="essential_shop") for i in range(4, 6)]
    await accounts.sender.send(batch(part_two, batch_id=batch_id, reference="LO-LON", part=2, parts=2,
                                     total_units=5))
    arrived = await accounts.batch_arrives(batch(part_one, batch_id=batch_id, reference="LO-LON", part=1, parts=2,
                                                 total_units=5))
    city = accounts.headers(Role.CITY_DIC)

    async def complete():
        detail = (await accounts.provisioning.get(f"/api/batches/{arrived}", headers=city)).json()
        return detail if len(detail["units"]) == 5 else None

    detail = await eventually(complete, what="both parts of the batch")
    assert [u["unit_name"] for u in detail["units"]] == [f"Cửa hàng thiết yếu số {i}" for i in range(1, 6)]
    assert detail["unit_count"] == 5
    job = await accounts.issue(arrived)
    assert job["done"] == 5


@pytest.fixture
async def flow(backend, keys, mint, mail_server):
    """Provisioning, notification and declaration on the parametrised backend."""
    from .conftest import FAST, FAST_NOTIFICATION, build_settings, run_services

    settings = {}
    for service in ("provisioning", "notification", "declaration"):
        extra = {**FAST_NOTIFICATION, "smtp_port": mail_server.port} if service == "notification" else dict(FAST)
        settings[service] = build_settings(service, keys, database_url=await backend.database_url(service),
                                           bus_url=backend.bus_url, kafka_partitions=2,
                                           bus_namespace=backend.bus_options().get("namespace", ""), **extra)
    async with run_services(settings) as system:
        sender = await BatchSender.start(keys.data_dir, backend.bus_url, backend.bus_options().get("namespace", ""))
        try:
            yield Accounts(system, sender, mint, mail_server)
        finally:
            await sender.stop()


async def test_events_flow_on_both_backends(flow: Accounts):
    """The same flow on SQLite + embedded bus and on PostgreSQL + Kafka: batch in, accounts out,
    the e-mail sent, the credentials in the channel, the venues known to the declaration service."""
    batch_id = await flow.batch_arrives(batch([
        unit("Trường THCS Bình Khánh", email="thcs.binhkhanh@example.vn", gates=2),
        unit("Nhà máy nước đá Cần Thạnh", unit_type="factory")], reference="LO-HAI-BE"))
    job = await flow.issue(batch_id)
    assert job["done"] == 2
    [mail] = await wait_for_mail(flow.mail, 1, timeout=60)
    assert mail["Subject"].endswith("Trường THCS Bình Khánh")
    district = flow.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT)

    async def in_channel():
        rows = (await flow.notification.get("/api/support/threads/787/credentials", headers=district)).json()
        return rows if len(rows) == 1 else None

    [waiting] = await eventually(in_channel, timeout=60, what="the credentials in the channel")
    assert waiting["unit_name"] == "Nhà máy nước đá Cần Thạnh"
    codes = {v["code"] for v in (await flow.provisioning.get("/api/venues", headers=flow.headers(Role.CITY_DIC))).json()}
    assert len(codes) == 3

    async def declaration_knows():
        from services.declaration.models import Venue

        async with flow.system.runtime("declaration").database.transaction(readonly=True) as session:
            known = set((await session.execute(select(Venue.code))).scalars())
        return codes <= known

    await eventually(declaration_knows, timeout=60, what="the venues in the declaration service")


async def test_the_mail_server_keeps_vietnamese_intact_for_a_reset(accounts: Accounts):
    """A reset by the district: a new password by e-mail, the old one no longer signs in."""
    batch_id = await accounts.batch_arrives(batch([unit("Bưu cục Cần Thạnh", email="buucuc@example.vn")]))
    await accounts.issue(batch_id)
    [first] = await wait_for_mail(accounts.mail, 1)
    username, old = credentials_in(first)
    units = (await accounts.provisioning.get("/api/units", headers=accounts.headers(Role.CITY_DIC))).json()
    detail = (await accounts.provisioning.get(f"/api/units/{units[0]['id']}",
                                              headers=accounts.headers(Role.CITY_DIC))).json()
    account_id = detail["accounts"][0]["id"]
    reset = await accounts.provisioning.post(f"/api/accounts/{account_id}/reset",
                                             headers=accounts.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT))
    assert reset.status_code == 200, reset.text
    assert "Đã đặt lại mật khẩu" in reset.json()["message"] and "password" not in reset.json()
    messages = await wait_for_mail(accounts.mail, 2)
    second = messages[1]
    assert second["Subject"] == "Mật khẩu mới – Hệ thống khai báo y tế điện tử – Bưu cục Cần Thạnh"
    assert "vừa được đặt lại theo đề nghị" in second.get_body(preferencelist=("plain",)).get_content()
    same_user, new = credentials_in(second)
    assert same_user == username and new != old
    assert (await accounts.provisioning.post("/api/token", json={"username": username, "password": old})
            ).status_code == 401
    token = await accounts.provisioning.post("/api/token", json={"username": username, "password": new})
    assert token.status_code == 200 and token.json()["must_change_password"] is True


def test_mail_server_fixture_is_real(mail_server: MailServer):
    import smtplib

    with smtplib.SMTP("127.0.0.1", mail_server.port, timeout=5) as client:
        client.sendmail("a@example.vn", ["b@example.vn"], "Subject: kiểm tra\r\n\r\nxin chào".encode())
    assert len(mail_server.inbox.envelopes) == 1
