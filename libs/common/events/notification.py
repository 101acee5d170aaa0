"""Events produced by the notification service (deliveries, Support Channel, alerts).

Credentials delivery (topic ``khaibao.notification``, partition key: the account id).
Each names the delivery and the ``credentials_id`` of the provisioning event it delivers
(``provisioning.account.issued`` / ``.password_reset``), so that provisioning can show
where the credentials of an account are, and ignore news of credentials already
replaced by a reset:

- ``notification.credentials.emailed``: the e-mail was accepted by the SMTP server.
- ``notification.credentials.routed_to_channel``: no e-mail address (``reason``
  ``no_email``) or sending kept failing for the configured period (``send_failed``): the
  credentials wait in the district's Support Channel.
- ``notification.credentials.opened``: the district focal point opened them (logged).
- ``notification.credentials.handed_over``: the district focal point marked them handed
  over to the unit.
"""
from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from .envelope import Event, EventData, register


class CredentialsStatusData(EventData):
    delivery_id: UUID
    credentials_id: UUID
    account_id: UUID
    unit_id: UUID
    commune_path: str
    district_path: str
    reason: Literal["no_email", "send_failed"] | None = None
    by_name: str = ""


class _CredentialsEvent(Event):
    data: CredentialsStatusData

    key_field: ClassVar[str] = "account_id"


@register
class CredentialsEmailed(_CredentialsEvent):
    type: Literal["notification.credentials.emailed"] = "notification.credentials.emailed"


@register
class CredentialsRoutedToChannel(_CredentialsEvent):
    type: Literal["notification.credentials.routed_to_channel"] = "notification.credentials.routed_to_channel"


@register
class CredentialsOpened(_CredentialsEvent):
    type: Literal["notification.credentials.opened"] = "notification.credentials.opened"


@register
class CredentialsHandedOver(_CredentialsEvent):
    type: Literal["notification.credentials.handed_over"] = "notification.credentials.handed_over"
