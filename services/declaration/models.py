"""Tables owned by the declaration service.

Its own copy of the venue list (from provisioning's events), the declarations, the
idempotency keys of submissions, the versioned screening rule sets, gate entries and
suspected cases raised by hand. The hot path writes ``declarations``, ``submissions``
and the outbox with batched core inserts (writers.py); the rest goes through the ORM.
"""
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import Column, Index, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class DeclarationTable(SQLModel, registry=registry()):
    pass


class Venue(DeclarationTable, table=True):
    __tablename__ = "venues"

    venue_id: UUID = Field(primary_key=True)
    code: str = Field(max_length=20, unique=True)
    unit_id: UUID = Field(index=True)
    unit_name: str = Field(max_length=300)
    name: str = Field(max_length=200)
    address: str = Field(max_length=300)
    commune_path: str = Field(max_length=60, index=True)
    active: bool = True
    # time.time() of the last change: web workers reload what changed since their last look.
    updated_at: float = 0.0


class RetiredCode(DeclarationTable, table=True):
    """A venue code replaced by a rotation: an old poster gets a clear message."""

    __tablename__ = "retired_codes"

    code: str = Field(max_length=20, primary_key=True)
    venue_id: UUID
    retired_at: datetime


class Declaration(DeclarationTable, table=True):
    """One person's declaration at one venue (a family's submission makes several)."""

    __tablename__ = "declarations"
    __table_args__ = (Index("declarations_venue_time", "venue_id", "submitted_at"),)

    id: UUID = Field(primary_key=True)
    submission_id: UUID = Field(index=True)
    member: int = 0
    venue_id: UUID
    venue_code: str = Field(max_length=20)
    unit_id: UUID
    commune_path: str = Field(max_length=60)
    submitted_at: datetime
    valid_until: datetime
    channel: str = Field(max_length=8)
    declared_by: str | None = Field(default=None, max_length=36)
    full_name: str = Field(max_length=100)
    id_type: str | None = Field(default=None, max_length=10)
    id_number: str | None = Field(default=None, max_length=20)
    birth_date: date | None = None
    birth_year: int
    gender: str = Field(max_length=8)
    nationality: str = Field(max_length=60)
    phone: str | None = Field(default=None, max_length=15)
    province_code: str = Field(max_length=10)
    district_code: str = Field(max_length=10)
    commune_code: str = Field(max_length=10)
    street: str = Field(max_length=200)
    symptoms: str = Field(default="", max_length=200)
    symptom_other: str | None = Field(default=None, max_length=200)
    exposures: str = Field(default="", max_length=200)
    vaccine_doses: int | None = None
    result: str = Field(max_length=8)
    reasons: str = Field(default="", max_length=300)
    rule_version: str = Field(max_length=40)
    # Set when retention.py erased the personal fields (the row stays for the counts).
    erased_at: datetime | None = None


class RetentionCursor(DeclarationTable, table=True):
    """How far retention.py has erased, by declaration id (time-ordered): each batch resumes there."""

    __tablename__ = "retention_cursor"

    name: str = Field(max_length=40, primary_key=True)
    erased_through: UUID | None = None
    updated_at: datetime | None = None


class Submission(DeclarationTable, table=True):
    """One form sent (one person or a group), by its idempotency key: a double submit is
    answered with the declarations of the first; the key sent with another request
    (another ``digest``, see declare.request_digest) is refused."""

    __tablename__ = "submissions"

    key: str = Field(max_length=64, primary_key=True)
    submission_id: UUID = Field(unique=True)
    venue_id: UUID
    size: int
    created_at: datetime
    # SHA-256 (hex) of the request; NULL for submissions stored before it was kept.
    digest: str | None = Field(default=None, max_length=64)


class RuleSet(DeclarationTable, table=True):
    """A version of the screening rules (JSON, see screening.py); one is active.

    Two-person rule: a city health officer proposes it (``created_*``: the proposal), a
    second one approves it (``approved_*``), which activates it (``activated_at``); or it is
    withdrawn or declined (``rejected_*``) and never becomes active.
    """

    __tablename__ = "rule_sets"

    version: str = Field(max_length=40, primary_key=True)
    rules: str = Field(sa_column=Column(Text, nullable=False))
    active: bool = False
    created_at: datetime
    created_by: str | None = Field(default=None, max_length=200)
    created_by_id: str | None = Field(default=None, max_length=64)
    approved_at: datetime | None = None
    approved_by: str | None = Field(default=None, max_length=200)
    approved_by_id: str | None = Field(default=None, max_length=64)
    activated_at: datetime | None = None
    rejected_at: datetime | None = None
    rejected_by: str | None = Field(default=None, max_length=200)

    @property
    def state(self) -> str:
        """``active``, ``pending`` (waiting for a second official), ``rejected`` or ``earlier``."""
        if self.active:
            return "active"
        if self.rejected_at is not None:
            return "rejected"
        return "earlier" if self.activated_at is not None else "pending"


class GateEntry(DeclarationTable, table=True):
    """A person let in at a gate; the id is the scanner's nonce, so an upload repeats safely."""

    __tablename__ = "gate_entries"
    __table_args__ = (Index("gate_entries_venue_time", "venue_id", "at"),)

    id: UUID = Field(primary_key=True)
    venue_id: UUID
    unit_id: UUID
    commune_path: str = Field(max_length=60)
    at: datetime
    declaration_id: UUID | None = None
    result: str = Field(max_length=10)
    recorded_by: str = Field(max_length=36)


class SuspectedCase(DeclarationTable, table=True):
    """A suspected case raised by gate staff by hand (circular 2.1)."""

    __tablename__ = "suspected_cases"

    id: UUID = Field(primary_key=True)
    venue_id: UUID = Field(index=True)
    unit_id: UUID
    commune_path: str = Field(max_length=60)
    raised_at: datetime
    raised_by: str = Field(max_length=36)
    raised_by_name: str = Field(max_length=200)
    declaration_id: UUID | None = None
    full_name: str = Field(max_length=100)
    phone: str | None = Field(default=None, max_length=15)
    id_number: str | None = Field(default=None, max_length=20)
    symptoms: str = Field(default="", max_length=200)
    note: str | None = Field(default=None, max_length=1000)


declarations_table = Declaration.__table__
submissions_table = Submission.__table__
