"""Alert e-mails and webhook calls: durable, leased, retried with backoff until sent.

The console alert exists as soon as the event is handled; these deliveries are rows of
``alert_dispatches`` that a worker claims with a lease (several processes share the
work), sends, and marks sent, or schedules again after ``initial * 2^(attempts-1)``
seconds (capped), until ``give_up_at``. An SMTP server or a webhook that is down delays
them; it never loses them. E-mails and webhooks carry no personal data: the venue, the
time and a link to the alert in the console, where the recipients sign in to see who.

Webhook calls are ``POST`` JSON with the headers ``X-Khaibao-Event``,
``X-Khaibao-Delivery`` (the same on every retry: receivers deduplicate on it),
``X-Khaibao-Timestamp`` and ``X-Khaibao-Signature: sha256=<hex>``, the HMAC-SHA256 of
``"<timestamp>.<body>"`` under the webhook's secret. Before each call the address is
checked again and the call pinned to the checked address (webhook_guard): an address that
leads into an internal network is not called, and its dispatch fails at once with the
reason (``webhook_private (10.0.0.5)``), without retries. A call queued for an address the
office has since removed or changed is cancelled, never made (alert_contacts).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr

import aiosmtplib
import httpx
from sqlalchemy import select

from libs.common.observability import RETENTION_ERASED
from libs.common.runtime import Runtime

from . import webhook_guard
from .alert_models import Alert, AlertContact, AlertDispatch
from .alerts import aware, erase_expired, escalate_due
from .delivery import claim_due, report_backlog
from .mailer import Mailer
from .settings import NotificationSettings
from .web import VIETNAM_TIME as VIETNAM

log = logging.getLogger(__name__)
SEND_ERRORS = (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, httpx.HTTPError)
REASON_LABELS = {
    "fever_with_respiratory_sign": "Sốt kèm ho, khó thở, đau họng hoặc mất vị giác/khứu giác",
    "close_contact": "Tiếp xúc gần với ca bệnh hoặc người nghi ngờ mắc COVID-19",
    "gate_case": "Nhân viên tại cổng báo ca nghi ngờ",
}


class WebhookFailed(Exception):
    pass


class WebhookRefused(Exception):
    """Not called, and never will be: ``"<code> (<detail>)"``, a code of webhook_guard."""


class WebhookCancelled(Exception):
    """Not called: the office removed or changed its webhook after the call was queued."""


def backoff(settings: NotificationSettings, attempts: int) -> float:
    return min(settings.alert_retry_initial_seconds * 2 ** max(attempts - 1, 0), settings.alert_retry_max_seconds)


def alert_url(settings: NotificationSettings, alert: Alert) -> str:
    return f"{settings.service_urls.get('notification', '').rstrip('/')}/alerts/{alert.id}"


def summary(runtime: Runtime, alert: Alert, kind: str) -> dict:
    """What an e-mail and a webhook say about an alert (no personal data)."""
    tree = runtime.tree
    reasons = [REASON_LABELS.get(code, code) for code in json.loads(alert.reasons or "[]")]
    raised = aware(alert.raised_at).astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y")
    lead = "CHUYỂN CẤP – chưa ai xác nhận: " if kind == "escalated" else ""
    what = ("Số khai báo đỏ bất thường (đợt tăng đột biến, từ" if alert.kind == "burst" else "Ca nghi ngờ")
    text = (f"{lead}{what} tại {alert.venue_name} ({alert.unit_name}), {tree.label(alert.commune_path)}, "
            f"lúc {raised}{')' if alert.kind == 'burst' else ''}. Xem và xác nhận: {alert_url(runtime.settings, alert)}")
    return {"kind": kind, "alert_id": str(alert.id), "source": alert.source, "venue_code": alert.venue_code,
            "venue_name": alert.venue_name, "unit_name": alert.unit_name, "address": alert.address,
            "commune_path": alert.commune_path, "commune": tree.label(alert.commune_path),
            "district_path": alert.district_path, "raised_at": aware(alert.raised_at).isoformat(),
            "reasons": reasons, "status": alert.status, "url": alert_url(runtime.settings, alert), "text": text,
            "alert_kind": alert.kind, "declarations": alert.declarations,
            "latest_at": aware(alert.latest_at or alert.raised_at).isoformat()}


def compose_email(settings: NotificationSettings, dispatch: AlertDispatch, info: dict) -> MIMEText:
    escalated = dispatch.kind == "escalated"
    burst = info.get("alert_kind") == "burst"
    subject = (f"[CHUYỂN CẤP] Cảnh báo ca nghi ngờ chưa được xác nhận – {info['venue_name']}" if escalated
               else f"[Cảnh báo] Số khai báo đỏ bất thường tại {info['venue_name']} – {info['commune']}" if burst
               else f"[Cảnh báo] Ca nghi ngờ tại {info['venue_name']} – {info['commune']}")
    lines = [
        "Kính gửi " + ("Quận/Huyện" if escalated else "Trung tâm Y tế và UBND phường/xã") + ",",
        "",
        ("Cảnh báo dưới đây chưa được xác nhận trong thời hạn quy định và được chuyển cấp lên quận/huyện."
         if escalated else
         "Một địa điểm vừa nhận số khai báo đỏ nhiều bất thường trong thời gian ngắn; các khai báo được gom vào một "
         "cảnh báo (số lượng và danh sách trong trang quản trị). Vui lòng kiểm tra trước khi liên hệ." if burst else
         "Một đơn vị vừa phát hiện một trường hợp nghi ngờ mắc COVID-19 (mục 2.1 của văn bản)."),
        "",
        f"Địa điểm: {info['venue_name']} (mã {info['venue_code']})",
        f"Đơn vị: {info['unit_name']}",
        f"Địa chỉ: {info['address']}, {info['commune']}",
        f"Thời điểm: {aware(datetime.fromisoformat(info['raised_at'])).astimezone(VIETNAM).strftime('%H:%M %d/%m/%Y')}",
        "Lý do: " + ("; ".join(info["reasons"]) or "—"),
        "",
        "Thông tin liên hệ của người nghi ngờ chỉ có trong trang quản trị. Đăng nhập để xem và xác nhận đã tiếp nhận:",
        info["url"],
        "",
        f"Hỗ trợ: {settings.help_line}",
        "— Hệ thống khai báo y tế điện tử TP.HCM (thư tự động, vui lòng không trả lời)",
    ]
    message = MIMEText("\n".join(lines) + "\n", "plain", "utf-8")
    message["Subject"] = Header(subject, "utf-8")
    name, address = parseaddr(settings.mail_from)
    message["From"] = formataddr((name, address or "khaibao@localhost"), charset="utf-8")
    message["To"] = ", ".join(a for a in dispatch.target.split() if a)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid("khaibao-alert", domain=(address or "").rpartition("@")[2] or "khaibao.local")
    message["Content-Language"] = "vi"
    message["Auto-Submitted"] = "auto-generated"
    return message


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def call_webhook(settings: NotificationSettings, client: httpx.AsyncClient, dispatch: AlertDispatch,
                       secret: str, info: dict) -> None:
    body = json.dumps({"type": f"alert.{dispatch.kind}", "delivery_id": str(dispatch.id), "alert": info},
                      ensure_ascii=False).encode()
    try:
        pinned = await webhook_guard.targets(dispatch.target, allow_private=settings.webhook_allow_private)
    except webhook_guard.UnsafeWebhook as unsafe:
        if unsafe.code == "webhook_unresolvable":  # DNS trouble may pass: retried like a server that is down
            raise WebhookFailed(unsafe.code) from None
        raise WebhookRefused(f"{unsafe.code} ({unsafe.detail})" if unsafe.detail else unsafe.code) from None
    timestamp = str(int(time.time()))
    headers = {"content-type": "application/json; charset=utf-8", "user-agent": "khaibao-alerts/1",
               "x-khaibao-event": f"alert.{dispatch.kind}", "x-khaibao-delivery": str(dispatch.id),
               "x-khaibao-timestamp": timestamp, "x-khaibao-signature": signature(secret, timestamp, body)}
    for index, target in enumerate(pinned):
        try:
            response = await client.post(target.url, content=body, headers={**headers, "host": target.host_header},
                                         extensions={"sni_hostname": target.server_name})
            break
        except (httpx.ConnectError, httpx.ConnectTimeout):
            if index == len(pinned) - 1:
                raise
    if not 200 <= response.status_code < 300:
        raise WebhookFailed(f"HTTP {response.status_code}")


async def claim(runtime: Runtime, owner: str, limit: int = 20) -> list[AlertDispatch]:
    return await claim_due(runtime, AlertDispatch, owner, limit)


async def _record(runtime: Runtime, dispatch_id, owner: str, error: Exception | None) -> None:  # noqa: ANN001
    settings: NotificationSettings = runtime.settings
    now = datetime.now(UTC)
    async with runtime.database.transaction() as session:
        dispatch = await session.get(AlertDispatch, dispatch_id)
        if dispatch is None or dispatch.status != "queued" or dispatch.lease_owner != owner:
            return
        dispatch.lease_owner, dispatch.lease_until = None, None
        if isinstance(error, WebhookCancelled):
            dispatch.status, dispatch.last_error = "cancelled", str(error)
            return
        dispatch.attempts += 1
        if error is None:
            dispatch.status, dispatch.sent_at, dispatch.last_error = "sent", now, None
            return
        dispatch.last_error = (str(error) if isinstance(error, WebhookFailed | WebhookRefused)
                               else type(error).__name__)[:200]
        if isinstance(error, WebhookRefused):
            dispatch.status = "failed"
            log.error("alert %s webhook of %s not called: %s", dispatch.alert_id, dispatch.office_path,
                      dispatch.last_error)
        elif now >= aware(dispatch.give_up_at):
            dispatch.status = "failed"
            log.error("alert %s %s to %s given up after %d attempts", dispatch.alert_id, dispatch.channel,
                      dispatch.office_path, dispatch.attempts)
        else:
            dispatch.next_attempt_at = now + timedelta(seconds=backoff(settings, dispatch.attempts))


async def send_batch(runtime: Runtime, dispatches: list[AlertDispatch], owner: str) -> None:
    settings: NotificationSettings = runtime.settings
    async with runtime.database.transaction(readonly=True) as session:
        alerts = {a.id: a for a in (await session.execute(
            select(Alert).where(Alert.id.in_({d.alert_id for d in dispatches})))).scalars()}
        contacts = {c.office_path: c for c in (await session.execute(
            select(AlertContact).where(AlertContact.office_path.in_({d.office_path for d in dispatches})))).scalars()}
    outcomes: dict = {}
    emails = [d for d in dispatches if d.channel == "email"]
    hooks = [d for d in dispatches if d.channel == "webhook"]
    if emails:
        try:
            async with Mailer(settings) as mailer:
                for dispatch in emails:
                    try:
                        message = compose_email(settings, dispatch, summary(runtime, alerts[dispatch.alert_id],
                                                                            dispatch.kind))
                        await mailer.client.send_message(message, sender=parseaddr(settings.mail_from)[1] or None,
                                                         recipients=dispatch.target.split())
                        outcomes[dispatch.id] = None
                    except SEND_ERRORS as exc:
                        outcomes[dispatch.id] = exc
                        if not mailer.client.is_connected:
                            break
        except SEND_ERRORS as exc:
            log.warning("SMTP server %s:%s unavailable for alert e-mails: %s", settings.smtp_host,
                        settings.smtp_port, type(exc).__name__)
            for dispatch in emails:
                outcomes.setdefault(dispatch.id, exc)
    if hooks:
        async with httpx.AsyncClient(timeout=settings.webhook_timeout, follow_redirects=False) as client:
            for dispatch in hooks:
                contact = contacts.get(dispatch.office_path)
                if contact is None or contact.webhook_url != dispatch.target:
                    # Removed or changed since it was queued (alert_contacts.save cancels those
                    # it finds queued; this one was claimed meanwhile): never the old address.
                    outcomes[dispatch.id] = WebhookCancelled(
                        "webhook_removed" if contact is None or not contact.webhook_url else "webhook_changed")
                    continue
                secret = contact.webhook_secret or ""
                try:
                    await call_webhook(settings, client, dispatch, secret,
                                       summary(runtime, alerts[dispatch.alert_id], dispatch.kind))
                    outcomes[dispatch.id] = None
                except (*SEND_ERRORS, WebhookFailed, WebhookRefused) as exc:
                    outcomes[dispatch.id] = exc
    for dispatch in dispatches:
        error = outcomes.get(dispatch.id, ConnectionError("not attempted"))
        if isinstance(error, WebhookCancelled):
            log.info("alert webhook of alert %s cancelled: %s", dispatch.alert_id, error)
        elif error is not None:
            log.warning("alert %s of alert %s (attempt %d) failed: %s", dispatch.channel, dispatch.alert_id,
                        dispatch.attempts + 1, type(error).__name__)
        await _record(runtime, dispatch.id, owner, error)


async def run_dispatcher(runtime: Runtime) -> None:
    """Send due alert e-mails and webhook calls (every notification process runs it)."""
    settings: NotificationSettings = runtime.settings
    owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    while not runtime.stopping.is_set():
        await report_backlog(runtime)
        batch = await claim(runtime, owner)
        if batch:
            await send_batch(runtime, batch, owner)
            continue
        await runtime.pause(settings.alert_poll_interval)


async def run_watch(runtime: Runtime) -> None:
    """Escalate alerts nobody acknowledged in time; erase person details past retention."""
    settings: NotificationSettings = runtime.settings
    next_erase = 0.0
    while not runtime.stopping.is_set():
        async with runtime.database.transaction() as session:
            await escalate_due(session, settings)
        if time.monotonic() >= next_erase:
            async with runtime.database.transaction() as session:
                erased = await erase_expired(session, settings)
            if erased:
                RETENTION_ERASED.labels("notification").inc(erased)
                log.info("person details of %d alerts erased (retention)", erased)
            next_erase = time.monotonic() + settings.retention_check_interval
        await runtime.pause(settings.alert_check_interval)
