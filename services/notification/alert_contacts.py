"""Where an office receives its alerts: e-mail addresses and an optional webhook.

A district health officer or district focal point sets those of the district; a commune
focal point those of the commune. The webhook (for an SMS gateway or another system)
receives a JSON POST signed with HMAC-SHA256 under a secret generated here. Its address
must be ``https://`` and must not lead into an internal network (see webhook_guard), unless
the setting ``webhook_allow_private`` is on.

Removing or changing the webhook cancels the calls still queued for the old address, in the
same transaction (``cancel_webhook_calls``): the old receiver is called no more, and the new
one never receives payloads queued for another receiver (alerts raised from then on go to
the new address). A cancelled call keeps its row (status ``cancelled``, the reason in
``last_error``) so the alert's page shows what happened.
"""
from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import text as typed
from libs.common.auth import Principal, Role

from . import webhook_guard
from .alert_models import AlertContact, AlertDispatch

EDITOR_ROLES = (Role.HEALTH_OFFICER, Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL)
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
MAX_EMAILS = 10


class ContactRefused(Exception):
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def office_of(principal: Principal, tree) -> str | None:  # noqa: ANN001 - AdminTree
    """The office whose contacts the principal edits: its district or its commune."""
    node = tree.get(principal.jurisdiction)
    if node is None:
        return None
    if principal.role in (Role.HEALTH_OFFICER, Role.DISTRICT_FOCAL) and node.depth == 1:
        return node.path
    if principal.role == Role.COMMUNE_FOCAL and node.depth >= 2:
        return node.path
    return None


def parse_emails(raw: str) -> list[str]:
    items = [e.strip() for e in re.split(r"[\s,;]+", raw or "") if e.strip()]
    if len(items) > MAX_EMAILS:
        raise ContactRefused("too_many_emails")
    for item in items:
        if len(item) > 254 or not EMAIL.match(item):
            raise ContactRefused("bad_email", item[:80])
    return list(dict.fromkeys(item.lower() for item in items))


async def parse_webhook(raw: str, *, allow_private: bool) -> str | None:
    """The webhook address to keep (None: no webhook), checked as a delivery would check it."""
    url = (raw or "").strip()
    if not url:
        return None
    if typed.refusal(url) is not None:  # the text policy (libs/common/text.py): no control or invisible character
        raise ContactRefused("bad_webhook")
    try:
        if allow_private:  # nothing to refuse by address: the form only (the name may not resolve yet)
            webhook_guard.split(url, allow_private=True)
        else:
            await webhook_guard.check(url, allow_private=False)
    except webhook_guard.UnsafeWebhook as unsafe:
        raise ContactRefused(unsafe.code, unsafe.detail) from None
    return url


async def cancel_webhook_calls(session: AsyncSession, office: str, reason: str) -> int:
    """Cancel the webhook calls of ``office`` still queued (``reason``: webhook_removed or
    webhook_changed); how many. A call under way when this commits is not recorded as sent
    (alert_dispatch._record keeps a row that is no longer queued as it is)."""
    result = await session.execute(
        update(AlertDispatch)
        .where(AlertDispatch.office_path == office, AlertDispatch.channel == "webhook",
               AlertDispatch.status == "queued")
        .values(status="cancelled", last_error=reason, lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


async def save(session: AsyncSession, principal: Principal, office: str, *, emails: str, webhook_url: str,
               new_secret: bool, allow_private: bool) -> AlertContact:
    addresses = parse_emails(emails)
    url = await parse_webhook(webhook_url, allow_private=allow_private)
    contact = await session.get(AlertContact, office)
    now = datetime.now(UTC)
    if contact is None:
        contact = AlertContact(office_path=office, updated_at=now)
        session.add(contact)
    contact.emails = "\n".join(addresses)
    if contact.webhook_url and contact.webhook_url != url:
        await cancel_webhook_calls(session, office, "webhook_removed" if url is None else "webhook_changed")
    if url is None:
        contact.webhook_url, contact.webhook_secret = None, None
    else:
        if new_secret or not contact.webhook_secret or contact.webhook_url != url:
            contact.webhook_secret = secrets.token_urlsafe(32)
        contact.webhook_url = url
    contact.updated_at, contact.updated_by_name = now, principal.name[:200]
    return contact
