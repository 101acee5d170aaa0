"""Tables owned by the declaration service.

Its own copy of the venue list (from provisioning's events), the declarations, the
idempotency keys of submissions, the versioned screening rule sets, gate entries and
suspected cases raised by hand. The hot path writes ``declarations``, ``submissions``
and the outbox with batched core inserts (writers.py); the rest goes through the ORM.

The fields that identify a person are encrypted at rest (libs/common/fieldcrypt.py, the
ring ``declaration``): the name, ID number, phone, birth date, street, the free-text
symptom and, on a suspected case, the note typed at the gate (it may name the person or
their condition). What stays clear is what the service counts or filters by: the
venue, commune, times, colour, the symptom and exposure codes, the birth year, gender and
nationality (each shared by thousands). The ID number and phone are looked up through
their blind index columns (``*_index``), never compared in the database.
"""
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import Column, Index, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from libs.common.fieldcrypt import SealedDate, SealedString, maintain_indexes

RING = "declaration"  # the key ring of this service's sealed columns (registered at start)
INDEX_LENGTH = 32  # a blind index: 128 bits in hex


def sealed(table: str, name: str, length: int, *, nullable: bool = True, index: str | None = None) -> Column:
    """A column of ``table`` stored encrypted; ``index``: the kind of its blind index column."""
    return Column(name, SealedString(RING, f"{table}.{name}", length, index=(f"{name}_index", index) if index else None),
                  nullable=nullable)


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
    full_name: str = Field(sa_column=sealed("declarations", "full_name", 100, nullable=False))
    id_type: str | None = Field(default=None, max_length=10)
    id_number: str | None = Field(default=None, sa_column=sealed("declarations", "id_number", 20, index="id_number"))
    birth_date: date | None = Field(default=None, sa_column=Column(
        "birth_date", SealedDate(RING, "declarations.birth_date"), nullable=True))
    birth_year: int
    gender: str = Field(max_length=8)
    nationality: str = Field(max_length=60)
    phone: str | None = Field(default=None, sa_column=sealed("declarations", "phone", 15, index="phone"))
    province_code: str = Field(max_length=10)
    district_code: str = Field(max_length=10)
    commune_code: str = Field(max_length=10)
    street: str = Field(sa_column=sealed("declarations", "street", 200, nullable=False))
    symptoms: str = Field(default="", max_length=200)
    symptom_other: str | None = Field(default=None, sa_column=sealed("declarations", "symptom_other", 200))
    exposures: str = Field(default="", max_length=200)
    vaccine_doses: int | None = None
    result: str = Field(max_length=8)
    reasons: str = Field(default="", max_length=300)
    rule_version: str = Field(max_length=40)
    # Set when retention.py erased the personal fields (the row stays for the counts).
    erased_at: datetime | None = None
    # Blind indexes (HMAC) of the ID number and phone: the equality lookups.
    id_number_index: str | None = Field(default=None, max_length=INDEX_LENGTH, index=True)
    phone_index: str | None = Field(default=None, max_length=INDEX_LENGTH, index=True)


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
    full_name: str = Field(sa_column=sealed("suspected_cases", "full_name", 100, nullable=False))
    phone: str | None = Field(default=None, sa_column=sealed("suspected_cases", "phone", 15, index="phone"))
    id_number: str | None = Field(default=None, sa_column=sealed("suspected_cases", "id_number", 20,
                                                                  index="id_number"))
    symptoms: str = Field(default="", max_length=200)
    note: str | None = Field(default=None, sa_column=sealed("suspected_cases", "note", 1000))
    id_number_index: str | None = Field(default=None, max_length=INDEX_LENGTH, index=True)
    phone_index: str | None = Field(default=None, max_length=INDEX_LENGTH, index=True)


# An ORM write (a suspected case, a test's row) fills the blind indexes itself; the hot
# path's batched inserts fill them in writers.seal_declaration.
maintain_indexes(Declaration)
maintain_indexes(SuspectedCase)

declarations_table = Declaration.__table__
submissions_table = Submission.__table__
