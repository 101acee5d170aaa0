"""Lists sent by e-mail (the circular's closing point): an SMTP receiver and the replies.

Each district has an address, ``danhsach.<district code>@<mail domain>``. Every .xlsx
attachment of a mail to it becomes an upload awaiting the district focal point's review,
stored in the same transaction as the reply it causes; the worker checks it and the
sender gets a reply with the upload's reference, or with the row report. Replies wait in
the ``mail_outbox`` table until the relay takes them (retried with backoff).

Automatic mail (bounces, auto-replies, lists) is never answered, so two robots cannot
talk to each other forever.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr, formatdate, getaddresses, make_msgid, parseaddr
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree, AdminUnit
from libs.common.db import Database
from libs.common.text import scrub

from .excel.reader import Limits
from .excel.report import registrations_sheet
from .imports import create_upload, error_of, report_of, report_workbook
from .models import MailOut, Registration, Upload
from .routing import district_by_code
from .text import now_utc

if TYPE_CHECKING:
    from .settings import IntakeSettings

log = logging.getLogger(__name__)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SAFE_HEADER = re.compile(r"[\r\n\x00]")
REPORT_LINES = 20


def _header(value: str | None, limit: int = 300) -> str | None:
    """A header's text as it may be stored: no line break, no NUL, nothing the text
    policy refuses (libs/common/text.py scrub)."""
    return scrub(SAFE_HEADER.sub(" ", str(value)), limit) or None if value else None


class Replies:
    """Composes the answers to a sender and queues them in the caller's transaction. In Vietnamese:
    a list arrives by e-mail, whose sender has no account and so no language of their own."""

    def __init__(self, settings: IntakeSettings, tree: AdminTree) -> None:
        self.settings = settings
        self.tree = tree
        self.limits = Limits(settings.max_upload_bytes, settings.max_uncompressed_bytes, settings.max_import_rows)

    def status_url(self, registration: Registration) -> str:
        base = self.settings.service_urls.get("intake", "").rstrip("/")
        return f"{base}/status/{registration.reference}/{registration.status_token}"

    def _district(self, path: str) -> AdminUnit | None:
        return self.tree.get(path)

    def message(self, *, district: AdminUnit | None, to: str, subject: str, body: str, in_reply_to: str | None = None,
                attachments: Sequence[tuple[str, bytes]] = ()) -> EmailMessage:
        code = district.code if district is not None else "hotro"
        sender = self.settings.inbound_address(code)
        office = f"Phòng Văn hóa và Thông tin {district.name}" if district is not None else "Hệ thống khai báo y tế"
        message = EmailMessage()
        message["From"] = formataddr((office, sender))
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.settings.mail_domain)
        message["Auto-Submitted"] = "auto-replied"
        reply_to = _header(in_reply_to)
        if reply_to:
            message["In-Reply-To"] = reply_to
            message["References"] = reply_to
        message.set_content(body)
        for filename, content in attachments:
            message.add_attachment(content, maintype="application", subtype=XLSX_TYPE.split("/", 1)[1],
                                   filename=filename)
        return message

    def queue(self, session: AsyncSession, message: EmailMessage, *, upload_id=None) -> None:  # noqa: ANN001
        session.add(MailOut(recipient=str(message["To"]), subject=str(message["Subject"])[:300],
                            message=message.as_bytes(policy=policy.SMTP), upload_id=upload_id,
                            created_at=now_utc(), next_attempt_at=time.time()))

    async def for_upload(self, session: AsyncSession, upload: Upload, kind: str, *, parsed=None,  # noqa: ANN001
                         registrations: Sequence[Registration] = ()) -> None:
        district = self._district(upload.district_path)
        name = district.name if district else ""
        attachments: list[tuple[str, bytes]] = []
        if kind == "received":
            subject = f"[khaibao] Đã nhận danh sách {upload.reference}"
            body = (
                f"Phòng Văn hóa và Thông tin {name} đã nhận tệp \"{upload.filename}\" với {upload.row_count} đơn vị.\n"
                f"Mã tiếp nhận: {upload.reference}\n\n"
                "Tệp hợp lệ và đang chờ đầu mối xem xét. Khi danh sách được tiếp nhận, đơn vị sẽ nhận thư kèm mã đăng ký "
                "và đường dẫn theo dõi của từng đơn vị.\n")
        elif kind == "refused":
            subject = f"[khaibao] Danh sách {upload.reference} chưa được tiếp nhận"
            error = error_of(upload)
            if error is not None:
                body = f"Tệp \"{upload.filename}\" (mã {upload.reference}) chưa được tiếp nhận:\n{error.vi}\n"
            else:
                report = report_of(upload)
                lines = [f"- Dòng {item['row']}: " + "; ".join(e["vi"] for e in item["errors"])
                         for item in report[:REPORT_LINES]]
                more = f"\n... và {len(report) - REPORT_LINES} dòng khác." if len(report) > REPORT_LINES else ""
                body = (f"Tệp \"{upload.filename}\" (mã {upload.reference}) có {len(report)} dòng cần sửa nên chưa được "
                        "tiếp nhận; không đơn vị nào trong tệp được nhập. Hãy sửa các dòng dưới đây (chi tiết trong tệp "
                        "báo cáo đính kèm, cột đầu tiên) rồi gửi lại cả tệp.\n\n" + "\n".join(lines) + more + "\n")
                workbook = await asyncio.to_thread(report_workbook, upload, self.limits, "vi", parsed)
                if workbook is not None:
                    attachments.append((f"bao-cao-loi-{upload.reference}.xlsx", workbook))
        elif kind == "imported":
            subject = f"[khaibao] Danh sách {upload.reference} đã được tiếp nhận"
            body = (f"Danh sách \"{upload.filename}\" (mã {upload.reference}) đã được tiếp nhận: "
                    f"{len(registrations)} đơn vị. Tệp đính kèm ghi mã đăng ký và đường dẫn theo dõi trạng thái của "
                    "từng đơn vị. Sở Thông tin và Truyền thông sẽ cấp tài khoản cho các đơn vị được duyệt.\n")
            sheet = await asyncio.to_thread(registrations_sheet, list(registrations), self.tree,
                                            status_url=self.status_url)
            attachments.append((f"ma-dang-ky-{upload.reference}.xlsx", sheet))
        elif kind == "dismissed":
            subject = f"[khaibao] Danh sách {upload.reference} không được tiếp nhận"
            body = (f"Phòng Văn hóa và Thông tin {name} không tiếp nhận danh sách \"{upload.filename}\" "
                    f"(mã {upload.reference}).\nLý do: {upload.review_note}\n")
        else:
            raise ValueError(kind)
        self.queue(session, self.message(district=district, to=upload.sender_email or "", subject=subject, body=body,
                                         in_reply_to=upload.message_id, attachments=attachments),
                   upload_id=upload.id)

    def instructions(self, district: AdminUnit, *, to: str, in_reply_to: str | None, ignored: Sequence[str],
                     with_lists: bool = False) -> EmailMessage:
        base = self.settings.service_urls.get("intake", "").rstrip("/")
        names = ", ".join(f'"{n}"' for n in ignored)
        reason = (f"Tệp {names} không phải bảng tính .xlsx nên không được đọc." if ignored else
                  "Thư không có tệp .xlsx đính kèm.")
        if with_lists:
            reason += " Các tệp .xlsx trong thư đang được kiểm tra; đơn vị sẽ nhận thư trả lời riêng cho từng tệp."
        body = (f"{reason}\n\nHãy tải mẫu danh sách tại {base}/d/{district.code}/mau-danh-sach.xlsx, điền mỗi đơn vị "
                f"một dòng, lưu dạng .xlsx và gửi lại vào địa chỉ {self.settings.inbound_address(district.code)}.\n"
                f"Thông tin chi tiết: {base}/d/{district.code}\n")
        return self.message(district=district, to=to, subject="[khaibao] Chưa nhận được danh sách",
                            body=body, in_reply_to=in_reply_to)


def _is_automatic(message: EmailMessage, envelope_sender: str | None) -> bool:
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    precedence = (message.get("Precedence") or "").strip().lower()
    sender = (envelope_sender or "").strip().lower()
    return (auto != "no" or precedence in ("bulk", "junk", "list") or not sender or sender == "<>"
            or sender.startswith(("mailer-daemon@", "postmaster@")) or bool(message.get("List-Id")))


def _reply_address(message: EmailMessage, envelope_sender: str | None) -> str | None:
    for header in ("Reply-To", "From"):
        value = message.get(header)
        if value:
            addresses = [a for _, a in getaddresses([str(value)]) if "@" in a]
            if addresses:
                return addresses[0][:254]
    _, address = parseaddr(envelope_sender or "")
    return address[:254] if "@" in address else None


def _is_xlsx(part: EmailMessage) -> bool:
    filename = (part.get_filename() or "").lower()
    return filename.endswith(".xlsx") or part.get_content_type() == XLSX_TYPE


class InboundHandler:
    """aiosmtpd handler: accepts mail for the districts' addresses only."""

    def __init__(self, database: Database, tree: AdminTree, settings: IntakeSettings, replies: Replies,
                 wake: asyncio.Event | None = None) -> None:
        self.database = database
        self.tree = tree
        self.settings = settings
        self.replies = replies
        self.wake = wake
        pattern = re.escape(settings.mail_local_prefix) + r"\.(\d{1,6})@" + re.escape(settings.mail_domain)
        self.address = re.compile(pattern + r"$", re.IGNORECASE)

    def district_for(self, address: str) -> AdminUnit | None:
        match = self.address.match(address.strip().strip("<>"))
        return district_by_code(self.tree, match.group(1)) if match else None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        if self.district_for(address) is None:
            return "550 5.1.1 Hop thu khong ton tai / No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        try:
            references = await self.receive(envelope.mail_from, envelope.rcpt_tos, envelope.original_content
                                            or envelope.content)
        except Exception:  # noqa: BLE001 - the sender's server will try again later
            log.exception("could not store an inbound mail")
            return "451 4.3.0 Loi tam thoi, xin gui lai sau / Temporary error, try again later"
        if self.wake is not None:
            self.wake.set()
        return "250 2.0.0 Da nhan / Received" + (f" {' '.join(references)}" if references else "")

    async def receive(self, mail_from: str | None, recipients: Sequence[str], raw: bytes) -> list[str]:
        """Store the mail's lists (and the replies it needs) in one transaction; their references."""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        automatic = _is_automatic(message, mail_from)
        reply_to = None if automatic else _reply_address(message, mail_from)
        districts = list({d.path: d for d in (self.district_for(r) for r in recipients) if d is not None}.values())
        message_id = _header(message.get("Message-ID"))
        lists, ignored = [], []
        for part in message.iter_attachments():
            filename = scrub(part.get_filename() or "", 200)
            if _is_xlsx(part):
                lists.append((filename or "danh-sach.xlsx", part.get_payload(decode=True) or b""))
            elif filename:
                ignored.append(filename[:100])
        references: list[str] = []
        if reply_to is None and automatic:
            log.info("inbound mail ignored: automatic message")
            return references
        async with self.database.transaction() as session:
            for district in districts:
                for filename, content in lists:
                    upload = await create_upload(
                        session, scope_path=district.path, district_path=district.path, source="email",
                        mode="review", filename=filename, content=content, sender_email=reply_to,
                        message_id=message_id)
                    references.append(upload.reference)
                if reply_to and (ignored or not lists):
                    self.replies.queue(session, self.replies.instructions(
                        district, to=reply_to, in_reply_to=message_id, ignored=ignored, with_lists=bool(lists)))
        log.info("inbound mail: %d list(s) stored, %d other attachment(s)", len(references), len(ignored))
        return references


async def start_receiver(handler: InboundHandler, settings: IntakeSettings) -> asyncio.AbstractServer:
    """The SMTP receiver on the service's own event loop (several workers share the port)."""
    from aiosmtpd.smtp import SMTP

    limit = int(settings.max_upload_bytes * 1.4) + 1024 * 1024  # base64 grows an attachment by a third
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, data_size_limit=limit, enable_SMTPUTF8=True, hostname=settings.mail_domain,
                     ident="khaibao intake", timeout=120),
        host=settings.smtp_host, port=settings.smtp_port, reuse_port=True)
