"""The Support Channel: a thread per district with the city; forwarded batches as spreadsheets,
messages with attachments both ways, unread counts per official, acknowledgement, and
clear Vietnamese refusals of what cannot be sent."""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook

from libs.common.auth import Role

from .conftest import Accounts, BatchSender, eventually, run_services, start_accounts
from .support import DEMO_DISTRICT, batch, unit

CITY_OFFICER = "00000000-0000-4000-9000-00000000c001"
DISTRICT_OFFICER = "00000000-0000-4000-9000-00000000d001"


@pytest.fixture
async def channel(make_settings, keys, mint):
    settings = start_accounts(make_settings, keys, mail=None, notification={"attachment_max_bytes": 4096})
    async with run_services(settings) as system:
        sender = await BatchSender.start(keys.data_dir, settings["provisioning"].bus_url)
        try:
            yield Accounts(system, sender, mint, None)
        finally:
            await sender.stop()


def _as(accounts: Accounts, role: Role, path: str, account: str, *, html: bool = True) -> dict:
    from libs.common.auth import Principal, TokenSigner, load_private_key

    principal = Principal(account_id=account, username=f"u.{account[-4:]}",
                          name="Nguyễn Văn Sở" if role == Role.CITY_DIC else "Trần Thị Huyện", role=role,
                          jurisdiction=path)
    token = TokenSigner(load_private_key(accounts.minter.private_key_file), issuer="khaibao-provisioning",
                        audience="khaibao").sign(principal)
    return {"authorization": f"Bearer {token}", **({"accept": "text/html"} if html else {})}


async def test_a_forwarded_batch_is_a_message_with_its_spreadsheet(channel: Accounts):
    tricky = unit("=HYPERLINK(\"http://example.com\",\"Bấm vào đây\")", contact_name="@Lê Văn Tám",
                  email="tam@example.vn", gates=4, tax_code="0312345678")
    plain = unit("Trường Mầm non Sơn Ca", unit_type="school", late=True)
    await channel.sender.send(batch([tricky, plain], reference="LO-EXCEL-01"))
    city = _as(channel, Role.CITY_DIC, "79", CITY_OFFICER, html=False)

    async def posted():
        rows = (await channel.notification.get("/api/support/threads/787/messages", headers=city)).json()
        return rows or None

    [message] = await eventually(posted, what="the batch message")
    assert message["kind"] == "batch" and message["side"] == "district"
    assert message["params"]["count"] == 2 and message["params"]["with_email"] == 1
    [attachment] = message["attachments"]
    assert attachment["filename"] == "danh-sach-LO-EXCEL-01.xlsx"
    download = await channel.notification.get(f"/support/attachments/{attachment['id']}",
                                               headers=_as(channel, Role.CITY_DIC, "79", CITY_OFFICER))
    assert download.status_code == 200
    assert download.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "attachment;" in download.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(download.content)).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0][0] == "DANH SÁCH ĐƠN VỊ ĐĂNG KÝ – LÔ LO-EXCEL-01"
    assert rows[2][:4] == ["STT", "Mã đăng ký", "Tên đơn vị", "Loại hình"]
    assert rows[3][2] == "'=HYPERLINK(\"http://example.com\",\"Bấm vào đây\")"  # never a formula
    assert rows[3][8] == "'@Lê Văn Tám" and rows[3][12] == 4 and rows[3][7] == "0312345678"
    assert rows[3][5] == "Thị trấn Cần Thạnh" and rows[3][6] == "Huyện Cần Giờ"
    assert rows[4][2:4] == ["Trường Mầm non Sơn Ca", "Trường học"] and rows[4][13] == "Đăng ký trễ hạn"
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    # Another district cannot download it.
    other = await channel.notification.get(f"/support/attachments/{attachment['id']}",
                                           headers=_as(channel, Role.DISTRICT_FOCAL, "79/760", DISTRICT_OFFICER))
    assert other.status_code == 404


async def test_messages_unread_counts_and_acknowledgement(channel: Accounts):
    city = _as(channel, Role.CITY_DIC, "79", CITY_OFFICER)
    district = _as(channel, Role.DISTRICT_FOCAL, DEMO_DISTRICT, DISTRICT_OFFICER)

    async def unread(headers) -> int:  # noqa: ANN001
        rows = (await channel.notification.get("/api/support/threads",
                                               headers={k: v for k, v in headers.items() if k != "accept"})).json()
        return next(r["unread"] for r in rows if r["district_path"] == DEMO_DISTRICT)

    # The district writes with a spreadsheet attached; the city has one unread message.
    sent = await channel.notification.post(
        "/support/787/messages", headers=district, data={"body": "Kính gửi Sở,\nđơn vị Chợ Bình Khánh xin cấp lại."},
        files={"file": ("bổ sung.csv", "STT,Tên\n1,Chợ Bình Khánh\n".encode(), "text/csv")})
    assert sent.status_code == 303 and "done=message_sent" in sent.headers["location"]
    assert await unread(city) == 1 and await unread(district) == 0
    home = await channel.notification.get("/", headers=city)
    assert "Tin nhắn chưa đọc: 1" in home.text
    listing = await channel.notification.get("/support", headers=city)
    assert re.search(r'data-path="79/787">.*?<strong class="count">1</strong>', listing.text, re.S)

    # The city reads the thread (the count drops), confirms receipt and answers.
    page = await channel.notification.get("/support/787", headers=city)
    assert "Kính gửi Sở,\nđơn vị Chợ Bình Khánh xin cấp lại." in page.text
    assert "bổ sung.csv" in page.text and "Mới" in page.text
    assert await unread(city) == 0
    messages = (await channel.notification.get("/api/support/threads/787/messages",
                                               headers={"authorization": city["authorization"]})).json()
    [district_message] = messages
    own = await channel.notification.post(f"/support/messages/{district_message['id']}/ack", headers=district)
    assert "error=not_allowed" in own.headers["location"]  # the writer does not acknowledge itself
    ack = await channel.notification.post(f"/support/messages/{district_message['id']}/ack", headers=city)
    assert "done=acknowledged" in ack.headers["location"]
    answer = await channel.notification.post("/support/787/messages", headers=city,
                                             data={"body": "Sở đã nhận, sẽ cấp trong hôm nay."})
    assert answer.status_code == 303
    assert await unread(district) == 1 and await unread(city) == 0
    thread = await channel.notification.get("/support/787", headers=district)
    assert "Nguyễn Văn Sở đã nhận" in thread.text and "Sở đã nhận, sẽ cấp trong hôm nay." in thread.text
    [attachment] = next(m for m in (await channel.notification.get(
        "/api/support/threads/787/messages", headers={"authorization": district["authorization"]})).json()
        if m["attachments"])["attachments"]
    file = await channel.notification.get(f"/support/attachments/{attachment['id']}", headers=district)
    assert file.content == "STT,Tên\n1,Chợ Bình Khánh\n".encode()
    assert "filename*=UTF-8''b%E1%BB%95%20sung.csv" in file.headers["content-disposition"]


@pytest.mark.parametrize("data,files,message", [
    ({"body": "   "}, None, "Hãy viết tin nhắn hoặc đính kèm tệp."),
    ({"body": "x" * 5001}, None, "Tin nhắn dài quá 5.000 ký tự."),
    ({"body": "Kính gửi\u0000Sở"}, None, "Nội dung tin nhắn có ký tự điều khiển, ký tự ẩn"),
    ({"body": "Kính gửi \u202eSở"}, None, "Nội dung tin nhắn có ký tự điều khiển, ký tự ẩn"),
    ({"body": "Kính gửi\u0085Sở"}, None, "Nội dung tin nhắn có ký tự điều khiển, ký tự ẩn"),
    ({"body": "Tệp chạy"}, {"file": ("virus.exe", b"MZ...", "application/octet-stream")},
     "Không đính kèm được loại tệp này."),
    ({"body": "Tệp lớn"}, {"file": ("lon.pdf", b"%PDF" + b"0" * 5000, "application/pdf")}, "Tệp quá lớn."),
    ({"body": "Tệp rỗng"}, {"file": ("rong.txt", b"", "text/plain")}, "Tệp không có nội dung."),
])
async def test_what_cannot_be_sent_is_explained(channel: Accounts, data, files, message):
    district = _as(channel, Role.DISTRICT_FOCAL, DEMO_DISTRICT, DISTRICT_OFFICER)
    response = await channel.notification.post("/support/787/messages", headers=district, data=data, files=files)
    assert response.status_code == 303
    page = await channel.notification.get(response.headers["location"], headers=district)
    assert page.status_code == 200 and message in page.text
    listed = (await channel.notification.get("/api/support/threads/787/messages",
                                             headers={"authorization": district["authorization"]})).json()
    assert listed == []
