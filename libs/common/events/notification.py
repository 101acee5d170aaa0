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

Suspected-case alerts (partition key: the alert id; ``jurisdiction`` and
``data.commune_path`` are the commune of the venue). They carry no personal data: the
alert's person details stay in notification; reporting counts alerts and their
acknowledgement times from these:

- ``notification.alert.raised``: a flagged declaration or a case raised at a gate became
  an alert to the district health center and the commune focal point. ``kind`` (optional,
  ``single`` when absent, as in the events before it existed) is ``burst`` for the one
  "unusual burst" alert of a venue flooded with reds (its ``source_id`` is the first red
  past the threshold); the later reds of a burst, or repeats of one person, are counted in
  their alert and raise no event.
- ``notification.alert.acknowledged``: an officer acknowledged it.
- ``notification.alert.escalated``: nobody acknowledged it in time; escalated to the district.
"""
from __future__ import annotations

from datetime import datetime
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


AlertSource = Literal["flagged", "case_raised"]
AlertKind = Literal["single", "burst"]


class AlertRaisedData(EventData):
    alert_id: UUID
    source: AlertSource
    source_id: UUID  # the declaration id (flagged) or the case id (case_raised)
    venue_id: UUID
    venue_code: str
    unit_id: UUID
    commune_path: str
    district_path: str
    raised_at: datetime
    kind: AlertKind = "single"  # optional: added with alert storms, absent before


@register
class AlertRaised(Event):
    type: Literal["notification.alert.raised"] = "notification.alert.raised"
    data: AlertRaisedData
    key_field: ClassVar[str] = "alert_id"


class AlertAcknowledgedData(EventData):
    alert_id: UUID
    commune_path: str
    district_path: str
    raised_at: datetime
    acknowledged_at: datetime
    by_role: str  # the role of the officer (commune_focal, district_health, ...)
    escalated: bool = False


@register
class AlertAcknowledged(Event):
    type: Literal["notification.alert.acknowledged"] = "notification.alert.acknowledged"
    data: AlertAcknowledgedData
    key_field: ClassVar[str] = "alert_id"


class AlertEscalatedData(EventData):
    alert_id: UUID
    commune_path: str
    district_path: str
    raised_at: datetime
    escalated_at: datetime


@register
class AlertEscalated(Event):
    type: Literal["notification.alert.escalated"] = "notification.alert.escalated"
    data: AlertEscalatedData
    key_field: ClassVar[str] = "alert_id"
