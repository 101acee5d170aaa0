"""Tables owned by the provisioning service.

Identity (accounts), units and their venues, the copy of the batches districts forward
to the city (from ``intake.batch.forwarded``), the durable issuing jobs, retired venue
codes and the audit log of account and venue actions.
"""
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import Index
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class ProvisioningTable(SQLModel, registry=registry()):
    pass


class Account(ProvisioningTable, table=True):
    __tablename__ = "accounts"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    username: str = Field(max_length=80, unique=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=30)
    jurisdiction: str = Field(max_length=60, index=True)
    unit_id: UUID | None = Field(default=None, index=True)
    password_hash: str = Field(max_length=200)
    must_change_password: bool = True
    disabled: bool = False
    created_at: datetime
    # Where the last issued or reset credentials are (from notification's events).
    credentials_id: UUID | None = None
    credentials_status: str | None = Field(default=None, max_length=30)
    credentials_status_at: datetime | None = None
    password_changed_at: datetime | None = None
    last_signin_at: datetime | None = None
    created_by: UUID | None = None


class SignInThrottle(ProvisioningTable, table=True):
    """Failed sign-ins (and wrong current passwords) of one key: a pair (user name, client
    address), an address, or a user name for the hourly cap (signins/throttle.py). The key is an
    HMAC of what it counts: neither typed user names nor addresses are stored. Times are
    epoch seconds."""
    __tablename__ = "signin_throttle"

    key: str = Field(max_length=64, primary_key=True)
    failures: int
    first_failure_at: float
    last_failure_at: float = Field(index=True)
    # A pair only: the user name signed in from this address before (until then): the
    # address's own count does not slow it down (colleagues' typos behind one NAT).
    trusted_until: float | None = None


class SignInFailure(ProvisioningTable, table=True):
    """What an account's owner sees of failed attempts on it: per day and masked address,
    how many and the last one (attempts refused by the throttle included)."""
    __tablename__ = "signin_failures"

    account_id: UUID = Field(primary_key=True)
    day: str = Field(max_length=10, primary_key=True)
    address: str = Field(max_length=64, primary_key=True)
    attempts: int
    last_at: datetime


class Unit(ProvisioningTable, table=True):
    __tablename__ = "units"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str = Field(max_length=300)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    registration_id: UUID | None = Field(default=None, unique=True)
    created_at: datetime
    unit_type: str | None = Field(default=None, max_length=40)
    reference: str | None = Field(default=None, max_length=40)
    contact_name: str | None = Field(default=None, max_length=200)
    contact_position: str | None = Field(default=None, max_length=200)
    contact_phone: str | None = Field(default=None, max_length=40)
    contact_email: str | None = Field(default=None, max_length=254)
    tax_code: str | None = Field(default=None, max_length=40)
    batch_id: UUID | None = Field(default=None, index=True)


class Venue(ProvisioningTable, table=True):
    __tablename__ = "venues"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    unit_id: UUID = Field(index=True)
    code: str = Field(max_length=20, unique=True)
    name: str = Field(max_length=200)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    active: bool = True
    created_at: datetime
    updated_at: datetime | None = None
    disabled_reason: str | None = Field(default=None, max_length=300)


class RetiredCode(ProvisioningTable, table=True):
    """A venue code replaced by a rotation: never given out again."""

    __tablename__ = "retired_codes"

    code: str = Field(max_length=20, primary_key=True)
    venue_id: UUID = Field(index=True)
    retired_at: datetime


class ForwardedBatch(ProvisioningTable, table=True):
    """A batch a district forwarded to the city (copy of ``intake.batch.forwarded``)."""

    __tablename__ = "forwarded_batches"

    id: UUID = Field(primary_key=True)
    reference: str = Field(max_length=40)
    district_path: str = Field(max_length=60, index=True)
    unit_count: int
    forwarded_at: datetime
    received_at: datetime


class ForwardedUnit(ProvisioningTable, table=True):
    """One unit of a forwarded batch and what the city did with it."""

    __tablename__ = "forwarded_units"

    batch_id: UUID = Field(primary_key=True)
    registration_id: UUID = Field(primary_key=True, index=True)
    position: int
    reference: str = Field(max_length=40)
    unit_name: str = Field(max_length=300)
    unit_type: str = Field(max_length=40)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    tax_code: str | None = Field(default=None, max_length=40)
    contact_name: str = Field(max_length=200)
    contact_position: str | None = Field(default=None, max_length=200)
    contact_phone: str = Field(max_length=40)
    contact_email: str | None = Field(default=None, max_length=254)
    venue_count: int = 1
    late: bool = False
    status: str = Field(default="pending", max_length=20)  # pending | issued | failed
    unit_id: UUID | None = None
    error: str | None = Field(default=None, max_length=300)
    issued_at: datetime | None = None


class IssueJob(ProvisioningTable, table=True):
    """Durable background work: issue the accounts of a batch (or of one of its units).

    Progress is stored here; a worker holds a lease while it works, so a job survives a
    restart and several processes never work on the same job at once.
    """

    __tablename__ = "issue_jobs"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    batch_id: UUID = Field(index=True)
    registration_id: UUID | None = None
    district_path: str = Field(max_length=60, index=True)
    requested_by: UUID | None = None
    requested_by_name: str = Field(default="", max_length=200)
    status: str = Field(default="queued", max_length=20)  # queued | running | done | failed
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    with_email: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: float | None = None
    error: str | None = Field(default=None, max_length=300)


class AuditEntry(ProvisioningTable, table=True):
    """Who did what to an account, a unit or a venue, and when."""

    __tablename__ = "audit_log"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    at: datetime = Field(index=True)
    actor_id: UUID | None = None
    actor_name: str = Field(max_length=200)
    actor_role: str = Field(max_length=30)
    action: str = Field(max_length=40)
    unit_id: UUID | None = Field(default=None, index=True)
    target: str = Field(max_length=200)
    path: str = Field(max_length=60, index=True)
    detail: str | None = Field(default=None, max_length=300)


class SignInEvent(ProvisioningTable, table=True):
    """The sign-in history: a sign-in (success, failure, throttled), a sign-out, a
    password change or reset, an account disabled or enabled; who, from where, when, outcome.

    ``account_id``/``jurisdiction`` are the account's when the username names one (None
    for an unknown username: only the city reads those rows); ``username`` is the
    account's, else the name as typed (text-policy cleaned, cut at 80). ``actor_*`` is the
    official who reset, disabled or enabled the account. Pruned after
    ``KHAIBAO_PROVISIONING_SIGNIN_HISTORY_DAYS``. Never a password or a token.
    """

    __tablename__ = "signin_events"
    __table_args__ = (Index("ix_signin_events_account_id", "account_id", "at"),
                      Index("ix_signin_events_jurisdiction", "jurisdiction", "at"))

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    at: datetime = Field(index=True)
    event: str = Field(max_length=30)
    outcome: str = Field(max_length=20)
    username: str = Field(max_length=80)
    account_id: UUID | None = None
    role: str | None = Field(default=None, max_length=30)
    jurisdiction: str | None = Field(default=None, max_length=60)
    unit_id: UUID | None = None
    address: str | None = Field(default=None, max_length=64)
    actor_id: UUID | None = None
    actor_name: str | None = Field(default=None, max_length=200)
    detail: str | None = Field(default=None, max_length=60)
