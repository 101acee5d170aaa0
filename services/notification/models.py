"""Tables owned by the notification service.

The inbox of each office (notices), credentials deliveries (e-mail with durable retries,
or the district's Support Channel), the Support Channel itself (a thread per district
with the city, messages, attachments, read marks), the copy of forwarded batches that
its spreadsheets are made from, and the log of who opened which credentials.
"""
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import LargeBinary
from sqlalchemy.orm import registry
from sqlmodel import Column, Field, SQLModel


class NotificationTable(SQLModel, registry=registry()):
    pass


class Notice(NotificationTable, table=True):
    """A message in the console inbox of the office at ``recipient_path``."""

    __tablename__ = "notices"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    recipient_path: str = Field(max_length=60, index=True)
    kind: str = Field(max_length=40)
    subject: str = Field(max_length=300)
    reference: str | None = Field(default=None, max_length=40)
    source_event_id: UUID = Field(unique=True)
    created_at: datetime
    read_at: datetime | None = None


class Delivery(NotificationTable, table=True):
    """Credentials of one account on their way to the unit.

    ``queued`` (e-mail to send, retried until ``deadline_at``) -> ``sent``; or, without an
    e-mail address or after the deadline, ``channel`` (waiting in the district's Support
    Channel) -> ``opened`` -> ``handed_over``. A newer issuance of the same account makes
    the older one ``superseded``. The sealed password is erased once it is sent or opened.
    """

    __tablename__ = "deliveries"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    source_event_id: UUID = Field(unique=True)
    kind: str = Field(max_length=20)  # issued | reset
    group_key: str = Field(max_length=80, index=True)
    credentials_id: UUID
    account_id: UUID = Field(index=True)
    username: str = Field(max_length=80)
    unit_id: UUID
    unit_name: str = Field(max_length=300)
    unit_address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60)
    district_path: str = Field(max_length=60, index=True)
    reference: str | None = Field(default=None, max_length=40)
    contact_name: str | None = Field(default=None, max_length=200)
    contact_email: str | None = Field(default=None, max_length=254)
    sealed: str | None = Field(default=None, max_length=400)
    signin_url: str = Field(max_length=300)
    guide_url: str = Field(max_length=300)
    posters_url: str = Field(max_length=300)
    status: str = Field(default="queued", max_length=20, index=True)
    channel_reason: str | None = Field(default=None, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    deadline_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=200)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: float | None = None
    created_at: datetime
    sent_at: datetime | None = None
    landed_at: datetime | None = None
    opened_at: datetime | None = None
    opened_by_name: str | None = Field(default=None, max_length=200)
    handed_over_at: datetime | None = None
    handed_over_by_name: str | None = Field(default=None, max_length=200)


class CredentialAccess(NotificationTable, table=True):
    """Who opened or handed over which credentials, and when (never the password)."""

    __tablename__ = "credential_access"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    delivery_id: UUID = Field(index=True)
    account_id: UUID | None = None
    account_name: str = Field(max_length=200)
    action: str = Field(max_length=20)  # opened | handed_over
    at: datetime


class Thread(NotificationTable, table=True):
    """The Support Channel between one district and the city DIC."""

    __tablename__ = "support_threads"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    district_path: str = Field(max_length=60, unique=True)
    created_at: datetime
    last_message_at: datetime | None = None


class Message(NotificationTable, table=True):
    """A message of a thread: written by a person (``text``) or by the system.

    System messages (``batch``: a forwarded batch; ``credentials``: credentials waiting
    for the district; ``issuance``: the city issued a batch) are rendered from ``kind``
    and ``params`` (JSON), in the reader's language.
    """

    __tablename__ = "support_messages"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    thread_id: UUID = Field(index=True)
    kind: str = Field(max_length=20)
    side: str = Field(max_length=10)  # city | district
    author_id: UUID | None = None
    author_name: str = Field(max_length=200)
    body: str = Field(default="", max_length=5000)
    params: str = Field(default="{}", max_length=2000)
    source_key: str | None = Field(default=None, max_length=120, unique=True)
    created_at: datetime = Field(index=True)
    acknowledged_at: datetime | None = None
    acknowledged_by_name: str | None = Field(default=None, max_length=200)


class Attachment(NotificationTable, table=True):
    __tablename__ = "support_attachments"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    message_id: UUID = Field(index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int = 0
    # None for a forwarded batch: its spreadsheet is made from batch_units when downloaded.
    data: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    batch_id: UUID | None = None
    created_at: datetime


class ThreadRead(NotificationTable, table=True):
    """Up to when an official has read a thread (unread counts)."""

    __tablename__ = "support_reads"

    thread_id: UUID = Field(primary_key=True)
    account_id: UUID = Field(primary_key=True)
    last_read_at: datetime


class BatchCopy(NotificationTable, table=True):
    __tablename__ = "batches"

    id: UUID = Field(primary_key=True)
    reference: str = Field(max_length=40)
    district_path: str = Field(max_length=60, index=True)
    unit_count: int
    forwarded_at: datetime
    message_id: UUID | None = None


class BatchUnit(NotificationTable, table=True):
    __tablename__ = "batch_units"

    batch_id: UUID = Field(primary_key=True)
    registration_id: UUID = Field(primary_key=True)
    position: int
    reference: str = Field(max_length=40)
    unit_name: str = Field(max_length=300)
    unit_type: str = Field(max_length=40)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60)
    tax_code: str | None = Field(default=None, max_length=40)
    contact_name: str = Field(max_length=200)
    contact_position: str | None = Field(default=None, max_length=200)
    contact_phone: str = Field(max_length=40)
    contact_email: str | None = Field(default=None, max_length=254)
    venue_count: int = 1
    late: bool = False
