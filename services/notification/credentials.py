"""Credentials deliveries: from provisioning's sealed password to the unit.

``accept`` (the consumer, DB only) stores a delivery per ``provisioning.account.issued``
or ``.password_reset``: queued for e-mail when the unit gave an address, else straight
into the district's Support Channel. The e-mail worker (``delivery.py``) sends the queued
ones, with retries, and lands them in the Support Channel after the retry period. There
the district focal point opens them (the password is shown once, the opening logged and
the sealed copy erased) and marks them handed over. Never a password in a log.
"""
from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import sealed
from libs.common.auth import Principal, Role
from libs.common.events import Event
from libs.common.events.notification import (
    CredentialsHandedOver, CredentialsOpened, CredentialsRoutedToChannel, CredentialsStatusData,
)
from libs.common.events.provisioning import credentials_context
from libs.common.outbox import publish

from . import support
from .models import CredentialAccess, Delivery
from .settings import NotificationSettings

log = logging.getLogger(__name__)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FINAL = ("sent", "handed_over", "superseded")


class CredentialsRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def status_data(delivery: Delivery, *, by_name: str = "") -> CredentialsStatusData:
    return CredentialsStatusData(
        delivery_id=delivery.id, credentials_id=delivery.credentials_id, account_id=delivery.account_id,
        unit_id=delivery.unit_id, commune_path=delivery.commune_path, district_path=delivery.district_path,
        reason=delivery.channel_reason, by_name=by_name)


async def accept(session: AsyncSession, settings: NotificationSettings, event: Event) -> Delivery | None:
    """Store the delivery of an issued or reset password (idempotent by event id)."""
    data = event.data
    if (await session.execute(select(Delivery.id).where(Delivery.source_event_id == event.id))).first():
        return None
    now = datetime.now(UTC)
    # Credentials issued before for the same account are void: never hand over a stale password.
    await session.execute(
        update(Delivery).where(Delivery.account_id == data.account_id, Delivery.status.not_in(FINAL))
        .values(status="superseded", sealed=None, lease_owner=None, lease_until=None))
    email = (data.contact_email or "").strip()
    kind = "reset" if event.type == "provisioning.account.password_reset" else "issued"
    delivery = Delivery(
        source_event_id=event.id, kind=kind,
        group_key=str(data.job_id) if kind == "issued" and data.job_id else f"{kind}:{event.id}",
        credentials_id=data.credentials.credentials_id, account_id=data.account_id, username=data.username,
        unit_id=data.unit_id, unit_name=data.unit_name[:300], unit_address=data.unit_address[:300],
        commune_path=data.commune_path, district_path=data.district_path, reference=data.reference,
        contact_name=data.contact_name, contact_email=email if EMAIL.match(email) else None,
        sealed=data.credentials.sealed, signin_url=data.signin_url, guide_url=data.guide_url,
        posters_url=data.posters_url, status="queued", created_at=now, next_attempt_at=now,
        deadline_at=now + timedelta(seconds=settings.email_retry_period_seconds))
    session.add(delivery)
    if delivery.contact_email is None:
        await land_in_channel(session, delivery, "no_email", now)
    return delivery


async def land_in_channel(session: AsyncSession, delivery: Delivery, reason: str, now: datetime) -> None:
    """Hand the credentials to the district's Support Channel, with a message in its thread."""
    delivery.status = "channel"
    delivery.channel_reason = reason
    delivery.landed_at = now
    delivery.lease_owner, delivery.lease_until, delivery.next_attempt_at = None, None, None
    await session.flush()
    landed = (await session.execute(select(func.count()).where(
        Delivery.group_key == delivery.group_key, Delivery.district_path == delivery.district_path,
        Delivery.channel_reason == reason))).scalar_one()
    await support.post_system(
        session, delivery.district_path, kind="credentials", side="city", author="Sở Thông tin và Truyền thông",
        params={"count": landed, "kind": delivery.kind, "unit_name": delivery.unit_name, "reason": reason},
        source_key=f"credentials:{delivery.district_path}:{delivery.group_key}:{reason}", at=now)
    await publish(session, CredentialsRoutedToChannel(producer="notification", jurisdiction=delivery.commune_path,
                                                      data=status_data(delivery)))


def private_key(settings: NotificationSettings):  # noqa: ANN201 - X25519PrivateKey
    """Our key to open credentials; created in development, never in production."""
    private, public = settings.credentials_key_paths()
    if not private.exists() and settings.environment != "production" and settings.credentials_private_key_file is None:
        sealed.ensure_key_pair(private, public)
    return sealed.load_private(private)


def private_keys(settings: NotificationSettings) -> list:
    """Our current key, then the keys of before a rotation (their boxes still open)."""
    return [private_key(settings), *(sealed.load_private(p) for p in settings.credentials_previous_private_key_files)]


def open_password(settings: NotificationSettings, delivery: Delivery) -> str:
    if not delivery.sealed:
        raise CredentialsRefused("already_opened")
    try:
        keys = private_keys(settings)
    except (OSError, ValueError):
        log.error("the credentials private key is missing or unreadable")
        raise CredentialsRefused("no_key") from None
    try:
        return sealed.open_with(keys, delivery.sealed, credentials_context(delivery.account_id,
                                                                         delivery.credentials_id)).decode()
    except (sealed.SealedBoxError, ValueError):
        log.error("credentials of delivery %s cannot be opened with our key", delivery.id)
        raise CredentialsRefused("cannot_open") from None


async def get_delivery(session: AsyncSession, principal: Principal, delivery_id: UUID) -> Delivery | None:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or not support.may_access(principal, delivery.district_path):
        return None
    return delivery


async def open_credentials(session: AsyncSession, settings: NotificationSettings, principal: Principal,
                           delivery: Delivery) -> str:
    """The password, once, to the district focal point; logged; the sealed copy erased."""
    if principal.role != Role.DISTRICT_FOCAL or principal.jurisdiction != delivery.district_path:
        raise CredentialsRefused("not_allowed")
    if delivery.status != "channel":
        raise CredentialsRefused("already_opened" if delivery.status == "opened" else "not_waiting")
    password = open_password(settings, delivery)
    now = datetime.now(UTC)
    delivery.status, delivery.sealed = "opened", None
    delivery.opened_at, delivery.opened_by_name = now, principal.name[:200]
    session.add(CredentialAccess(delivery_id=delivery.id, account_id=support.account_uuid(principal),
                                 account_name=principal.name[:200], action="opened", at=now))
    await publish(session, CredentialsOpened(producer="notification", jurisdiction=delivery.commune_path,
                                             data=status_data(delivery, by_name=principal.name)))
    log.info("credentials of delivery %s opened by account %s", delivery.id, principal.account_id)
    return password


async def hand_over(session: AsyncSession, principal: Principal, delivery: Delivery) -> None:
    if principal.role != Role.DISTRICT_FOCAL or principal.jurisdiction != delivery.district_path:
        raise CredentialsRefused("not_allowed")
    if delivery.status == "handed_over":
        return
    if delivery.status != "opened":
        raise CredentialsRefused("open_first")
    now = datetime.now(UTC)
    delivery.status = "handed_over"
    delivery.handed_over_at, delivery.handed_over_by_name = now, principal.name[:200]
    session.add(CredentialAccess(delivery_id=delivery.id, account_id=support.account_uuid(principal),
                                 account_name=principal.name[:200], action="handed_over", at=now))
    await publish(session, CredentialsHandedOver(producer="notification", jurisdiction=delivery.commune_path,
                                                 data=status_data(delivery, by_name=principal.name)))


async def access_log(session: AsyncSession, delivery_ids: list[UUID]) -> dict[UUID, list[CredentialAccess]]:
    if not delivery_ids:
        return {}
    rows = await session.execute(select(CredentialAccess).where(CredentialAccess.delivery_id.in_(delivery_ids))
                                 .order_by(CredentialAccess.at))
    out: dict[UUID, list] = {}
    for entry in rows.scalars():
        out.setdefault(entry.delivery_id, []).append(entry)
    return out
