"""Event handlers of provisioning: the forwarded batches, and where credentials are.

Each runs inside the consumer's transaction (with the processed-event record) and only
changes provisioning's database.
"""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Event
from libs.common.events.intake import BatchForwarded

from .batches import record_forwarded_batch
from .models import Account

CREDENTIALS_STATUS = {
    "notification.credentials.emailed": "emailed",
    "notification.credentials.routed_to_channel": "in_channel",
    "notification.credentials.opened": "opened",
    "notification.credentials.handed_over": "handed_over",
}


async def on_batch_forwarded(session: AsyncSession, event: BatchForwarded) -> None:
    """The district forwarded a batch to the city (1.3 step 2): keep it for the city console."""
    await record_forwarded_batch(session, event)


async def on_credentials_status(session: AsyncSession, event: Event) -> None:
    """Follow the delivery of the account's current credentials (older ones are ignored)."""
    data = event.data
    await session.execute(
        update(Account).where(Account.id == data.account_id, Account.credentials_id == data.credentials_id)
        .values(credentials_status=CREDENTIALS_STATUS[event.type], credentials_status_at=event.occurred_at))


HANDLERS = {
    "intake.batch.forwarded": on_batch_forwarded,
    **{event_type: on_credentials_status for event_type in CREDENTIALS_STATUS},
}
