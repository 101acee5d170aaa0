"""Events produced by the provisioning service (identity, units, venues).

Venues (topic ``khaibao.provisioning``, partition key: the venue id, so the events of one
venue arrive in order). Every venue event carries the venue's full current state
(``venue_id, code, unit_id, unit_name, name, address, commune_path`` and, except in
``created``, ``active``), so a consumer keeping a venue copy (the declaration service)
can simply upsert the row on any of them:

- ``provisioning.venue.created``: a new venue (gate) of a unit, active. Unchanged since
  version 1; its code is the one printed on the poster and in the QR URL
  ``<declaration public base>/v/{code}``.
- ``provisioning.venue.updated``: its name or address (or its unit's name) changed.
- ``provisioning.venue.disabled``: the unit or an official closed the venue; ``reason``
  is free text (may be empty). A scan of its code must say that the venue no longer
  takes declarations. ``provisioning.venue.enabled`` reopens it.
- ``provisioning.venue.code_rotated``: the venue got a new code (``code``), the old one
  (``old_code``) is retired for ever and must never be accepted again; a scan of an old
  poster must show a clear message ("this poster is out of date, ask the unit for the
  new one") rather than a form. Codes are 10 characters of ``VENUE_CODE_ALPHABET``
  (no 0/O, 1/I); a typed code may come in lower case or with the dash printed on the
  poster (``ABCDE-FGHJK``): normalise with ``normalise_venue_code``.

Accounts (partition key: the account id):

- ``provisioning.account.issued``: a unit administrator account was created for a unit
  forwarded by a district (circular 1.3 step 3). ``credentials.sealed`` is the initial
  password sealed for the notification service (``libs.common.sealed``; associated data
  ``credentials_context(account_id, credentials_id)``), never the password in clear.
  Notification e-mails it to ``contact_email`` or, without one, hands it to the
  district's Support Channel.
- ``provisioning.account.password_reset``: the city or the district reset the password;
  same delivery data, a new ``credentials_id``; earlier credentials of the account are
  void.
- ``provisioning.account.disabled`` / ``provisioning.account.enabled``.

Sessions (partition key: the account id; every service consumes them, see
``libs/common/sessions.py``):

- ``provisioning.session.revoked``: sessions of ``account_id`` have ended. With
  ``session_id``: that one session (sign-out; a token's ``sid``, or its ``jti`` when it
  has none). With ``not_before`` (seconds since the epoch): every token of the account
  issued before it (account disabled, password changed or reset). ``until``: when every
  token it targets has expired; the entry can be dropped then. ``reason`` is for the
  logs: ``signed_out``, ``disabled``, ``password_changed``, ``password_reset``, or a
  change of role or jurisdiction.

Issuance (partition key: the district path):

- ``provisioning.issuance.completed``: a job issuing the accounts of a forwarded batch
  (or of one unit of it) finished; counts of what was issued, skipped and failed.
"""
from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field, model_validator

from .envelope import Event, EventData, register

VENUE_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def normalise_venue_code(typed: str) -> str:
    """``abcde-fghjk`` or ``ABCDE FGHJK`` as printed or typed -> ``ABCDEFGHJK``."""
    return "".join(c for c in typed.upper() if c.isalnum())


def credentials_context(account_id: UUID | str, credentials_id: UUID | str) -> bytes:
    """The associated data that binds sealed credentials to one account and one issuance."""
    return f"khaibao-credentials:{account_id}:{credentials_id}".encode()


# --- venues ----------------------------------------------------------------------------

class VenueCreatedData(EventData):
    venue_id: UUID
    code: str
    unit_id: UUID
    unit_name: str
    name: str
    address: str
    commune_path: str


@register
class VenueCreated(Event):
    type: Literal["provisioning.venue.created"] = "provisioning.venue.created"
    data: VenueCreatedData

    key_field: ClassVar[str] = "venue_id"


class VenueStateData(EventData):
    """The venue as it is after the change."""

    venue_id: UUID
    code: str
    unit_id: UUID
    unit_name: str
    name: str
    address: str
    commune_path: str
    active: bool


class VenueDisabledData(VenueStateData):
    reason: str = ""


class VenueCodeRotatedData(VenueStateData):
    old_code: str


@register
class VenueUpdated(Event):
    type: Literal["provisioning.venue.updated"] = "provisioning.venue.updated"
    data: VenueStateData

    key_field: ClassVar[str] = "venue_id"


@register
class VenueDisabled(Event):
    type: Literal["provisioning.venue.disabled"] = "provisioning.venue.disabled"
    data: VenueDisabledData

    key_field: ClassVar[str] = "venue_id"


@register
class VenueEnabled(Event):
    type: Literal["provisioning.venue.enabled"] = "provisioning.venue.enabled"
    data: VenueStateData

    key_field: ClassVar[str] = "venue_id"


@register
class VenueCodeRotated(Event):
    type: Literal["provisioning.venue.code_rotated"] = "provisioning.venue.code_rotated"
    data: VenueCodeRotatedData

    key_field: ClassVar[str] = "venue_id"


# --- accounts --------------------------------------------------------------------------

class SealedCredentials(EventData):
    """The password sealed for the notification service (never in clear on the bus)."""

    credentials_id: UUID
    key_id: str
    sealed: str


class CredentialsDeliveryData(EventData):
    """Everything notification needs to deliver credentials, without reading provisioning."""

    account_id: UUID
    username: str
    role: str
    unit_id: UUID
    unit_name: str
    unit_address: str
    commune_path: str
    district_path: str
    registration_id: UUID | None = None
    reference: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    venue_count: int = Field(default=1, ge=0)
    credentials: SealedCredentials
    signin_url: str
    guide_url: str
    posters_url: str
    job_id: UUID | None = None


@register
class AccountIssued(Event):
    type: Literal["provisioning.account.issued"] = "provisioning.account.issued"
    data: CredentialsDeliveryData

    key_field: ClassVar[str] = "account_id"


class PasswordResetData(CredentialsDeliveryData):
    reset_by_role: str
    reset_by_name: str


@register
class AccountPasswordReset(Event):
    type: Literal["provisioning.account.password_reset"] = "provisioning.account.password_reset"
    data: PasswordResetData

    key_field: ClassVar[str] = "account_id"


class AccountStateData(EventData):
    account_id: UUID
    username: str
    role: str
    unit_id: UUID | None = None
    jurisdiction: str
    by_name: str = ""


@register
class AccountDisabled(Event):
    type: Literal["provisioning.account.disabled"] = "provisioning.account.disabled"
    data: AccountStateData

    key_field: ClassVar[str] = "account_id"


@register
class AccountEnabled(Event):
    type: Literal["provisioning.account.enabled"] = "provisioning.account.enabled"
    data: AccountStateData

    key_field: ClassVar[str] = "account_id"


# --- sessions --------------------------------------------------------------------------

class SessionRevokedData(EventData):
    account_id: str = Field(min_length=1, max_length=64)
    session_id: str | None = Field(default=None, min_length=1, max_length=64)
    not_before: float | None = Field(default=None, ge=0)
    until: float = Field(ge=0)
    reason: str = Field(default="", max_length=40)

    @model_validator(mode="after")
    def _targets_something(self) -> "SessionRevokedData":
        if self.session_id is None and self.not_before is None:
            raise ValueError("a revocation names a session or a time")
        return self


@register
class SessionRevoked(Event):
    type: Literal["provisioning.session.revoked"] = "provisioning.session.revoked"
    data: SessionRevokedData

    key_field: ClassVar[str] = "account_id"


# --- issuance --------------------------------------------------------------------------

class IssuanceCompletedData(EventData):
    job_id: UUID
    batch_id: UUID | None = None
    batch_reference: str | None = None
    district_path: str
    issued: int = Field(ge=0)
    skipped: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    with_email: int = Field(default=0, ge=0)
    requested_by_name: str = ""


@register
class IssuanceCompleted(Event):
    type: Literal["provisioning.issuance.completed"] = "provisioning.issuance.completed"
    data: IssuanceCompletedData

    key_field: ClassVar[str] = "district_path"
