"""Lists sent by e-mail, with real mail: smtplib sends to the intake's SMTP receiver, the
replies go out through a real relay (an aiosmtpd server of the test) and are read there."""
from __future__ import annotations

import asyncio
import io
import re
import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from openpyxl import load_workbook

from libs.common.auth import Role
from services.intake.tests.sheets import fill_template, unit_row
from tests.infra.process import free_port
from tests.services.conftest import eventually

from .conftest import DEMO_COMMUNE, DEMO_DISTRICT, FAST, build_settings, headers, run_services, wait_upload

DOMAIN = "khaibao.test"
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


class Inbox:
    """The relay: every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


@pytest.fixture
def relay():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
async def mailed(keys, relay):
    inbox, relay_port = relay
    port = free_port()
    settings = build_settings("intake", keys, smtp_port=port, mail_domain=DOMAIN, smtp_relay_host="127.0.0.1",
                              smtp_relay_port=relay_port, **FAST)
    async with run_services({"intake": settings}) as system:
        yield system, inbox, port


def send(port: int, *, to: str = f"danhsach.787@{DOMAIN}", sender: str = "vanthu@truonghoc.example",
         attachments: list[tuple[str, bytes]] = (), headers: dict | None = None, subject: str = "Danh sách đơn vị") -> dict:
    message = EmailMessage()
    message["From"] = f"Văn thư <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<test-{id(message)}@truonghoc.example>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content("Kính gửi Phòng Văn hóa và Thông tin, đơn vị gửi danh sách đính kèm.")
    for filename, content in attachments:
        message.add_attachment(content, maintype=XLSX[0], subtype=XLSX[1], filename=filename)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.send_message(message)


def attachment(message: EmailMessage) -> tuple[str, bytes]:
    part = next(message.iter_attachments())
    return part.get_filename(), part.get_content()


async def test_a_list_by_mail_gets_a_reference_then_the_units_references(mailed, mint, template):
    system, inbox, port = mailed
    client = system["intake"]
    district = headers(mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    content = fill_template(template, [unit_row(1), unit_row(2, kind="Trường học", commune="Xã Bình Khánh")])
    await asyncio.to_thread(send, port, attachments=[("danh-sach-don-vi.xlsx", content)])

    [reply] = await eventually(lambda: _async(inbox.to("vanthu@truonghoc.example")), what="the reply")
    assert reply["Subject"].startswith("[khaibao] Đã nhận danh sách TL")
    assert str(reply["From"]).endswith(f"<danhsach.787@{DOMAIN}>")
    assert reply["In-Reply-To"].startswith("<test-") and reply["Auto-Submitted"] == "auto-replied"
    body = reply.get_body(("plain",)).get_content()
    assert "2 đơn vị" in body and "chờ đầu mối xem xét" in body
    # One language: the sender of a list has no account, hence Vietnamese only (issue 18.2).
    assert "English" not in body and " / " not in reply["Subject"]
    reference = re.search(r"TL\d{6}-[0-9A-Z]{6}", reply["Subject"]).group(0)

    # The district sees it awaiting review; the commune does not.
    [waiting] = (await client.get("/api/imports", headers=district)).json()
    assert (waiting["reference"], waiting["status"], waiting["source"]) == (reference, "awaiting_review", "email")
    assert (await client.get("/api/imports", headers=headers(mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE))).json() == []
    assert (await client.get("/api/registrations", headers=district)).json() == []

    approved = await client.post(f"/api/imports/{waiting['id']}/approve", headers=district)
    assert approved.status_code == 200
    done = await wait_upload(client, district, waiting["id"])
    assert done["status"] == "imported" and done["registration_count"] == 2
    registrations = (await client.get("/api/registrations", headers=district)).json()
    assert {r["unit_name"] for r in registrations} == {"Công ty TNHH Số 00001", "Công ty TNHH Số 00002"}

    second = await eventually(lambda: _async(inbox.to("vanthu@truonghoc.example")[1:]), what="the second reply")
    assert "đã được tiếp nhận" in second[0]["Subject"]
    name, sheet_bytes = attachment(second[0])
    assert name == f"ma-dang-ky-{reference}.xlsx"
    sheet = load_workbook(io.BytesIO(sheet_bytes)).active
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert {r[0] for r in rows} == {r["reference"] for r in registrations}
    status_url = rows[0][4]
    assert status_url.startswith("http://intake.test/status/DK")
    page = await client.get(status_url.replace("http://intake.test", ""))
    assert page.status_code == 200 and "Đang chờ" in page.text


async def test_a_bad_list_by_mail_gets_the_row_report(mailed, template):
    system, inbox, port = mailed
    rows = [unit_row(1), unit_row(2, contact_phone="12"), unit_row(3, commune="Phường Bến Nghé")]
    await asyncio.to_thread(send, port, sender="ketoan@congty.example",
                            attachments=[("ds.xlsx", fill_template(template, rows))])
    [reply] = await eventually(lambda: _async(inbox.to("ketoan@congty.example")), what="the reply")
    assert "chưa được tiếp nhận" in reply["Subject"]
    body = reply.get_body(("plain",)).get_content()
    assert "có 2 dòng cần sửa" in body and "- Dòng 3: Số điện thoại (ô J3)" in body and "- Dòng 4:" in body
    name, content = attachment(reply)
    assert name.startswith("bao-cao-loi-TL")
    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet["B1"].value == "LỖI CẦN SỬA" and "Số điện thoại không hợp lệ" in sheet["B3"].value
    assert sheet["B2"].value is None and "không thuộc Huyện Cần Giờ" in sheet["B4"].value


async def test_what_is_not_a_list(mailed, template):
    system, inbox, port = mailed
    client = system["intake"]
    # No attachment at all: the instructions, with the template's address.
    await asyncio.to_thread(send, port, sender="a@donvi.example")
    [reply] = await eventually(lambda: _async(inbox.to("a@donvi.example")), what="the instructions")
    assert "Thư không có tệp .xlsx đính kèm" in reply.get_body(("plain",)).get_content()
    assert "/d/787/mau-danh-sach.xlsx" in reply.get_body(("plain",)).get_content()
    # A PDF named .xlsx: refused with the reason.
    await asyncio.to_thread(send, port, sender="b@donvi.example", attachments=[("ds.xlsx", b"%PDF-1.4 not a sheet")])
    [reply] = await eventually(lambda: _async(inbox.to("b@donvi.example")), what="the refusal")
    assert "không phải bảng tính Excel (.xlsx)" in reply.get_body(("plain",)).get_content()
    # An unknown address is refused by the server itself.
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(send, port, to=f"danhsach.99999@{DOMAIN}", attachments=[("ds.xlsx", template)])
    assert list(refused.value.recipients.values())[0][0] == 550
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(send, port, to="someone@elsewhere.example")
    # An automatic message (an out-of-office) is never answered, so robots cannot loop.
    await asyncio.to_thread(send, port, sender="robot@donvi.example", headers={"Auto-Submitted": "auto-replied"},
                            attachments=[("ds.xlsx", fill_template(template, [unit_row(1)]))])
    await asyncio.sleep(1.0)
    assert inbox.to("robot@donvi.example") == []
    runtime = system.runtime("intake")
    from sqlalchemy import func, select

    from services.intake.models import MailOut, Upload

    async with runtime.database.transaction(readonly=True) as session:
        uploads = (await session.execute(select(func.count()).select_from(Upload))).scalar_one()
        unsent = (await session.execute(select(func.count()).select_from(MailOut).where(MailOut.sent_at.is_(None))
                                        )).scalar_one()
    assert uploads == 1 and unsent == 0
    _ = client


async def test_a_dismissed_list_tells_the_sender_why(mailed, mint, template):
    system, inbox, port = mailed
    client = system["intake"]
    district = headers(mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    await asyncio.to_thread(send, port, sender="c@donvi.example",
                            attachments=[("ds.xlsx", fill_template(template, [unit_row(1)]))])
    await eventually(lambda: _async(inbox.to("c@donvi.example")), what="the first reply")
    [waiting] = (await client.get("/api/imports", headers=district)).json()
    dismissed = await client.post(f"/api/imports/{waiting['id']}/dismiss", headers=district,
                                  json={"reason": "Đơn vị không thuộc huyện Cần Giờ"})
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    replies = await eventually(lambda: _async(inbox.to("c@donvi.example")[1:]), what="the dismissal")
    assert "Đơn vị không thuộc huyện Cần Giờ" in replies[0].get_body(("plain",)).get_content()
    assert (await client.post(f"/api/imports/{waiting['id']}/approve", headers=district)).status_code == 409


async def test_replies_wait_for_the_relay(keys, template):
    """The relay is down: the reply stays in the outbox and goes out when it is back."""
    from sqlalchemy import select

    from services.intake.models import MailOut

    relay_port, port = free_port(), free_port()
    settings = build_settings("intake", keys, smtp_port=port, mail_domain=DOMAIN, smtp_relay_host="127.0.0.1",
                              smtp_relay_port=relay_port, smtp_relay_timeout=2, **FAST)
    async with run_services({"intake": settings}) as system:
        runtime = system.runtime("intake")
        await asyncio.to_thread(send, port, sender="d@donvi.example")

        async def attempted():
            async with runtime.database.transaction(readonly=True) as session:
                mail = (await session.execute(select(MailOut))).scalars().first()
            return mail if mail is not None and mail.attempts >= 1 else None

        mail = await eventually(attempted, what="a failed attempt")
        assert mail.sent_at is None and mail.last_error and "d@donvi.example" not in mail.last_error
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=relay_port)
        controller.start()
        try:
            async with runtime.database.transaction() as session:   # skip the backoff wait
                (await session.execute(select(MailOut))).scalars().first().next_attempt_at = 0
            await eventually(lambda: _async(inbox.to("d@donvi.example")), what="the reply after the outage")
        finally:
            controller.stop()


async def _async(value):  # noqa: ANN001, ANN202
    return value
