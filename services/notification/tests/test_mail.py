"""The credentials e-mail, sent to a real SMTP server (aiosmtpd) and read back.

Long Vietnamese subjects are folded into several encoded words: the spaces between them
must survive (Python 3.11's newer header folder loses them, hence the classic MIME classes).
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

import pytest
from aiosmtpd.controller import Controller

from services.notification.delivery import backoff
from services.notification.mailer import Mailer, compose, subject_of
from services.notification.models import Delivery
from services.notification.settings import NotificationSettings
from tests.services.conftest import free_port_block


class Collect:
    def __init__(self) -> None:
        self.received: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802, ANN201
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    handler, port = Collect(), free_port_block(1)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _delivery(unit_name: str, **extra) -> Delivery:
    values = dict(source_event_id=uuid.uuid4(), kind="issued", group_key="g", credentials_id=uuid.uuid4(),
                  account_id=uuid.uuid4(), username="dv27664-k7m2p", unit_id=uuid.uuid4(), unit_name=unit_name,
                  unit_address="12 Lương Văn Nho", commune_path="79/787/27664", district_path="79/787",
                  contact_name="Huỳnh Thị Ngọc Ánh", contact_email="anh.huynh@example.vn",
                  signin_url="https://khaibao.example/signin", guide_url="https://khaibao.example/help/unit",
                  posters_url="https://khaibao.example/posters", created_at=datetime.now(UTC))
    values.update(extra)
    return Delivery(**values)


NAMES = ["Chợ Cần Thạnh", "Trường Trung học cơ sở và Trung học phổ thông Thạnh An – điểm trường ấp Thiềng Liềng",
         "Công ty TNHH MTV Dịch vụ Công ích huyện Cần Giờ <Chi nhánh & Xí nghiệp số 2>",
         "Cửa hàng bách hóa Ngọc Ánh – ấp Đồng Tranh, xã Long Hòa, huyện Cần Giờ, TP. Hồ Chí Minh"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["issued", "reset"])
async def test_vietnamese_subject_and_body_arrive_intact(smtp, name, kind):
    handler, port = smtp
    settings = NotificationSettings(smtp_port=port, environment="test")
    delivery = _delivery(name, kind=kind)
    async with Mailer(settings) as mailer:
        await mailer.send(compose(settings, delivery, "k7m2p-9qxzr-abcde-fghjk"))
    [envelope] = handler.received
    assert envelope.rcpt_tos == ["anh.huynh@example.vn"] and envelope.mail_from == "khaibao@tphcm.gov.vn"
    message = message_from_bytes(envelope.original_content, policy=default)
    assert message["Subject"] == subject_of(delivery)
    assert message["From"].addresses[0].display_name == "Sở Thông tin và Truyền thông TP.HCM"
    assert message["To"].addresses[0].display_name == "Huỳnh Thị Ngọc Ánh"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Kính gửi Huỳnh Thị Ngọc Ánh," in text and name in text
    assert "Mật khẩu:      k7m2p-9qxzr-abcde-fghjk" in text
    assert "Trân trọng,\nSở Thông tin và Truyền thông Thành phố Hồ Chí Minh" in text
    assert "<" not in name or "&lt;Chi nhánh &amp; Xí nghiệp số 2&gt;" in html  # escaped in HTML
    assert "<code>k7m2p-9qxzr-abcde-fghjk</code>" in html
    # Every line fits the SMTP limit.
    assert max(len(line) for line in envelope.original_content.split(b"\r\n")) <= 998


def test_the_backoff_doubles_up_to_its_cap():
    settings = NotificationSettings(email_retry_initial_seconds=30, email_retry_max_seconds=900)
    assert [backoff(settings, n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
