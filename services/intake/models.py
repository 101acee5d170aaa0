"""Tables owned by the intake service."""
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class IntakeTable(SQLModel, registry=registry()):
    pass


class Registration(IntakeTable, table=True):
    """One unit's registration: who it is, who receives it, and where it stands."""

    __tablename__ = "registrations"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    reference: str = Field(max_length=20, unique=True)
    status_token: str = Field(max_length=40)
    unit_name: str = Field(max_length=300)
    unit_type: str = Field(max_length=40)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    district_path: str = Field(max_length=60, index=True)
    receiver: str = Field(max_length=10)
    receiver_path: str = Field(max_length=60, index=True)
    tax_code: str | None = Field(default=None, max_length=20, index=True)
    contact_name: str = Field(max_length=120)
    contact_position: str | None = Field(default=None, max_length=120)
    contact_phone: str = Field(max_length=20)
    contact_email: str | None = Field(default=None, max_length=254, index=True)
    venue_count: int = 1
    notes: str | None = Field(default=None, max_length=500)
    source: str = Field(default="form", max_length=10)  # form, console, email
    upload_id: UUID | None = None
    name_key: str = Field(default="", max_length=300, index=True)
    address_key: str = Field(default="", max_length=300)
    status: str = Field(default="submitted", max_length=20)
    late: bool = False
    submitted_at: datetime
    reviewed_at: datetime | None = None
    reviewed_by: str | None = Field(default=None, max_length=200)
    review_reason: str | None = Field(default=None, max_length=500)
    duplicate_of: UUID | None = None
    exempt_reason: str | None = Field(default=None, max_length=20)
    list_id: UUID | None = Field(default=None, index=True)
    sent_at: datetime | None = None
    batch_id: UUID | None = Field(default=None, index=True)
    forwarded_at: datetime | None = None
    updated_at: datetime | None = None
    # The public edge (services/intake/registration/spam.py): the client address a form or API
    # registration came from, and why it looks like spam (comma-separated codes; none: not
    # suspected). A suspected registration waits apart from the review queue.
    client_address: str | None = Field(default=None, max_length=64, index=True)
    spam_reasons: str | None = Field(default=None, max_length=200)


class RegistrationHistory(IntakeTable, table=True):
    """What happened to a registration, by whom and why (shown to officials and, without names, to the unit)."""

    __tablename__ = "registration_history"

    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"),
                                                          primary_key=True, autoincrement=True))
    registration_id: UUID = Field(index=True)
    at: datetime
    action: str = Field(max_length=20)
    actor: str | None = Field(default=None, max_length=200)
    actor_path: str | None = Field(default=None, max_length=60)
    note: str | None = Field(default=None, max_length=500)


class CommuneList(IntakeTable, table=True):
    """A commune's accepted registrations, sent to the district focal point."""

    __tablename__ = "commune_lists"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    reference: str = Field(max_length=20, unique=True)
    commune_path: str = Field(max_length=60, index=True)
    district_path: str = Field(max_length=60, index=True)
    count: int
    sent_at: datetime
    sent_by: str = Field(max_length=200)


class Batch(IntakeTable, table=True):
    """A batch the district forwarded to the city DIC (circular 1.3 step 2)."""

    __tablename__ = "batches"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    reference: str = Field(max_length=20, unique=True)
    district_path: str = Field(max_length=60, index=True)
    count: int
    parts: int = 1
    forwarded_at: datetime
    forwarded_by: str = Field(max_length=200)


class Upload(IntakeTable, table=True):
    """An uploaded or e-mailed list file and the durable background work on it.

    queued -> validating -> importing -> imported, or -> refused (a row report); an
    e-mailed list stops at awaiting_review after validation until a focal point imports
    or dismisses it. Progress is stored here so that any process can show it.
    """

    __tablename__ = "uploads"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    reference: str = Field(max_length=20, unique=True)
    scope_path: str = Field(max_length=60, index=True)
    district_path: str = Field(max_length=60, index=True)
    source: str = Field(max_length=10)         # console, email
    mode: str = Field(max_length=10)           # import, review
    status: str = Field(max_length=20, index=True)
    filename: str = Field(max_length=255)
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploaded_by: str | None = Field(default=None, max_length=200)
    sender_email: str | None = Field(default=None, max_length=254)
    message_id: str | None = Field(default=None, max_length=300)
    received_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    phase: str | None = Field(default=None, max_length=20)
    processed_rows: int = 0
    total_rows: int = 0
    row_count: int = 0
    error_count: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))        # file-level error, JSON {vi, en}
    report: str | None = Field(default=None, sa_column=Column(Text))       # row errors, JSON
    registration_count: int = 0
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: float | None = None
    reviewed_by: str | None = Field(default=None, max_length=200)
    review_note: str | None = Field(default=None, max_length=500)


class MailOut(IntakeTable, table=True):
    """A reply waiting to go out through the SMTP relay (sent by the worker, retried)."""

    __tablename__ = "mail_outbox"

    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"),
                                                          primary_key=True, autoincrement=True))
    recipient: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    message: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    upload_id: UUID | None = None
    created_at: datetime
    next_attempt_at: float
    attempts: int = 0
    sent_at: datetime | None = None
    failed: bool = False
    last_error: str | None = Field(default=None, max_length=300)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: float | None = None
