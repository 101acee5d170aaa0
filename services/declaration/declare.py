"""The hot path: a declaration (one person or a group) screened, stored, answered with passes.

``prepare`` is pure: from the validated input, the venue, the active rule book and the
pass keys it builds the rows, the events and the answer. ``accept`` runs it and hands the
rows to the group committer (the request owns that commit: it waits for it). Both doors,
the JSON API and the HTML form, call ``accept``. Nothing here calls another service.
"""
from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from asyncpg.pgproto.pgproto import UUID as FastUUID
from pydantic_core import to_json
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import parse_event
from libs.common.events.declaration import (
    DeclarationFlagged, DeclarationFlaggedData, DeclarationSubmitted, PersonDetails, SensitiveDetails, VenueRef,
    seal_person,
)
from libs.common.events.envelope import Event, topic_for
from libs.common.observability import current_trace_id
from libs.common.ratelimit import retry_after
from libs.common.ui import N_

from .batcher import GroupCommitter
from .directory import RETIRED, Directory, VenueInfo
from .models import Declaration, Submission
from .passes import PassKeys
from .places import load_places
from .schemas import DeclarationIn, PersonIn
from .screening import RuleBook, answer_codes


def uuid7() -> UUID:
    """A time-ordered UUID (version 7): new rows land at the end of the primary key index.

    Built as asyncpg's UUID (a ``uuid.UUID`` subclass in C, equal and hashing alike): made
    and printed in a tenth of the standard class's time (the submission's and each
    person's id, each printed into the event, the pass and the row)."""
    ms = (time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF
    raw = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | raw[6] & 0x0F  # version 7
    raw[8] = 0x80 | raw[8] & 0x3F  # RFC 4122 variant
    return FastUUID(bytes(raw))


class DeclarationRefused(Exception):
    """The venue cannot take declarations, or the group is too large: a clear message, no row."""

    def __init__(self, code: str, message: str, status: int, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status
        self.params = params


UNKNOWN_VENUE = ("unknown_venue", N_("This venue code does not exist. Scan the QR code at the gate again, "
                                      "or type the code printed under it."), 404)
VENUE_DISABLED = ("venue_disabled", N_("This venue no longer takes declarations. Ask the staff at the gate."), 410)
CODE_RETIRED = ("code_retired", N_("This QR code has been replaced by a new one. Scan the new poster at the gate, "
                                    "or ask the staff."), 410)
TOO_MANY = ("too_many", N_("At most %(max)s people can declare together: send the others in a second form."), 422)
TOO_FAST = ("too_fast", N_("Too many declarations are arriving at this venue right now. Wait %(seconds)s seconds, "
                           "then send again."), 429)
KEY_REUSED = ("key_reused", N_("This idempotency key was already used for a declaration with other details. "
                               "Send a new key for a new declaration."), 409)


class VenueRateLimited(DeclarationRefused):
    """Too many people declared at this venue just now (429, ``retry_after`` seconds): nothing stored."""

    def __init__(self, wait: float) -> None:
        self.retry_after = retry_after(wait)
        super().__init__(*TOO_FAST, seconds=self.retry_after)


@dataclass
class Ports:
    """What the hot path uses, built once per web worker (runtime.extras["declaration"])."""

    directory: Directory
    committer: GroupCommitter
    keys: PassKeys
    valid_for: timedelta
    max_group: int
    # The notification service's raw X25519 public key: a red declaration's personal
    # details are sealed to it (settings.sealing_key()).
    seal_to: bytes
    # (venue code, people) -> 0.0 or the seconds to wait: the per-venue limit, shared by
    # the service's workers (libs/common/ratelimit.py); None: no limit.
    venue_limit: Callable[[str, int], float] | None = None


def request_digest(data: DeclarationIn, channel: str, declared_by: str | None) -> str:
    """What binds an idempotency key to its request: SHA-256 of the validated input's JSON
    (the model's field order, normalised values), the door and who declared on the
    visitor's behalf. The parsed form rather than the raw body: the JSON API and the HTML
    forms build the same input, and a client that re-serialises its retry (another key
    order, spacing) still sends the same declaration; the fields that are not the
    declaration (the CSRF token, the form's action) stay out. One serialisation (in Rust,
    about a third of the validation's cost) and one hash."""
    text = to_json(data) + b"\0" + channel.encode() + b"\0" + (declared_by or "").encode()
    return hashlib.sha256(text).hexdigest()


@dataclass
class Prepared:
    key: str
    digest: str
    submission_id: UUID
    submission: dict
    declarations: list[dict]
    outbox: list[tuple]
    answer: dict
    urgent: bool = field(default=False)  # a red declaration: its alert must not wait

    @property
    def events(self) -> list[Event]:
        """The events of the outbox rows, as their consumers will read them."""
        return [parse_event(row[4]) for row in self.outbox]


def outbox_row(event: Event, now: float) -> tuple:
    """The outbox row of ``event`` (columns of writers.OUTBOX_COLUMNS), as publish() writes it."""
    return (str(event.id), event.type, event.topic, event.partition_key(), event.to_bytes(), event.trace_id, now)


SUBMITTED = DeclarationSubmitted.model_fields["type"].default
FLAGGED = DeclarationFlagged.model_fields["type"].default
TOPIC = topic_for(SUBMITTED)


def random_uuid4_text() -> str:
    """``str(uuid.uuid4())`` for a third of its cost (an event id per declaration)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def submitted_row(*, declaration_id: str, submission_id: str, venue: VenueInfo, venue_ids: tuple[str, str],
                  when: str, valid_until: str, result: str, reasons: list[str], rule_version: str, channel: str,
                  group_size: int, full_name: str, phone: str | None, trace_id: str, stamp: float) -> tuple:
    """The outbox row of a ``declaration.submitted`` event, its JSON written directly.

    The hot path writes one per person: building the pydantic event and serialising it
    cost ~40 µs of the ~150 µs a declaration takes to prepare. The values here are already
    validated (the request's model, the venue copy, the rule book), and
    tests/declaration/test_batcher.py checks that every payload parses into the same
    event as the model would build (``parse_event``), so the contract cannot drift.
    """
    event_id = random_uuid4_text()
    payload = to_json({
        "id": event_id, "type": SUBMITTED, "version": DeclarationSubmitted.current_version, "occurred_at": when,
        "producer": "declaration", "trace_id": trace_id, "jurisdiction": venue.commune_path,
        "data": {"declaration_id": declaration_id, "submission_id": submission_id, "venue_id": venue_ids[0],
                 "venue_code": venue.code, "unit_id": venue_ids[1], "commune_path": venue.commune_path,
                 "submitted_at": when, "valid_until": valid_until, "result": result, "reasons": reasons,
                 "rule_version": rule_version, "channel": channel, "group_size": group_size,
                 "full_name": full_name, "phone": phone},
    })
    return (event_id, SUBMITTED, TOPIC, declaration_id, payload, trace_id, stamp)


def venue_ref(venue: VenueInfo) -> VenueRef:
    return VenueRef(venue_id=venue.venue_id, venue_code=venue.code, venue_name=venue.name, unit_id=venue.unit_id,
                    unit_name=venue.unit_name, address=venue.address, commune_path=venue.commune_path)


def person_details(person: PersonIn, phone: str | None) -> PersonDetails:
    return PersonDetails(
        full_name=person.full_name, id_type=person.id_type, id_number=person.id_number,
        birth_date=person.birth.date, birth_year=person.birth.year, gender=person.gender,
        nationality=person.nationality, phone=phone, street=person.street, commune_code=person.commune_code,
        district_code=person.district_code, province_code=person.province_code,
        address_label=load_places().label(person.province_code, person.district_code, person.commune_code,
                                          person.street))


def pass_item(keys: PassKeys, declaration_id: UUID, full_name: str, result: str, reasons: list[str],
              valid_until: datetime, until: str | None = None) -> dict:
    return {"id": str(declaration_id), "full_name": full_name, "result": result, "reasons": reasons,
            "valid_until": until or valid_until.isoformat(),
            "qr": keys.issue(declaration_id, result, int(valid_until.timestamp()))}


def prepare(data: DeclarationIn, venue: VenueInfo, book: RuleBook, keys: PassKeys, *, now: datetime,
            valid_for: timedelta, seal_to: bytes, channel: str = "self", declared_by: str | None = None) -> Prepared:
    submission_id = uuid7()
    key = data.idempotency_key or uuid.uuid4().hex
    digest = request_digest(data, channel, declared_by)
    valid_until = now + valid_for
    stamp = now.timestamp()
    when, until = now.isoformat(), valid_until.isoformat()
    submission_text = str(submission_id)
    venue_ids = (str(venue.venue_id), str(venue.unit_id))
    trace_id = current_trace_id() or uuid.uuid4().hex
    group_phone = data.people[0].phone
    rows, outbox, passes = [], [], []
    urgent = False
    for member, person in enumerate(data.people):
        declaration_id = uuid7()
        result, reasons = book.screen(answer_codes(tuple(person.symptoms), tuple(person.exposures),
                                                   person.symptom_other))
        phone = person.phone or group_phone
        values = {
            "id": declaration_id, "submission_id": submission_id, "member": member, "venue_id": venue.venue_id,
            "venue_code": venue.code, "unit_id": venue.unit_id, "commune_path": venue.commune_path,
            "submitted_at": now, "valid_until": valid_until, "channel": channel, "declared_by": declared_by,
            "full_name": person.full_name, "id_type": person.id_type, "id_number": person.id_number,
            "birth_date": person.birth.date, "birth_year": person.birth.year, "gender": person.gender,
            "nationality": person.nationality, "phone": phone, "province_code": person.province_code,
            "district_code": person.district_code, "commune_code": person.commune_code, "street": person.street,
            "symptoms": ",".join(person.symptoms), "symptom_other": person.symptom_other,
            "exposures": ",".join(person.exposures), "vaccine_doses": person.vaccine_doses, "result": result,
            "reasons": ",".join(reasons), "rule_version": book.version,
        }
        rows.append(values)
        outbox.append(submitted_row(
            declaration_id=str(declaration_id), submission_id=submission_text, venue=venue, venue_ids=venue_ids,
            when=when, valid_until=until, result=result, reasons=list(reasons), rule_version=book.version,
            channel=channel, group_size=len(data.people), full_name=person.full_name, phone=phone,
            trace_id=trace_id, stamp=stamp))
        if result == "red":  # rare: the alert's event is built and checked by its model
            urgent = True
            outbox.append(outbox_row(DeclarationFlagged(
                producer="declaration", jurisdiction=venue.commune_path, trace_id=trace_id,
                occurred_at=now, data=DeclarationFlaggedData(
                declaration_id=declaration_id, submission_id=submission_id, venue=venue_ref(venue),
                commune_path=venue.commune_path, submitted_at=now, result=result, reasons=list(reasons),
                rule_version=book.version, channel=channel, sealed_person=seal_person(seal_to, SensitiveDetails(
                    person=person_details(person, phone), symptoms=list(person.symptoms),
                    symptom_other=person.symptom_other, exposures=list(person.exposures)),
                    FLAGGED, declaration_id))), stamp))
        passes.append(pass_item(keys, declaration_id, person.full_name, result, list(reasons), valid_until, until))
    return Prepared(
        key=key, digest=digest, submission_id=submission_id,
        submission={"key": key, "submission_id": submission_id, "venue_id": venue.venue_id, "size": len(rows),
                    "created_at": now, "digest": digest},
        declarations=rows, outbox=outbox, urgent=urgent,
        answer={"submission_id": str(submission_id), "duplicate": False, "rule_version": book.version,
                "venue_code": venue.code, "declarations": passes},
    )


async def find_venue(directory: Directory, code: str) -> VenueInfo:
    venue = await directory.venue(code)
    if venue is None:
        raise DeclarationRefused(*UNKNOWN_VENUE)
    if venue == RETIRED:
        raise DeclarationRefused(*CODE_RETIRED)
    if not venue.active:
        raise DeclarationRefused(*VENUE_DISABLED)
    return venue


async def accept(ports: Ports, data: DeclarationIn, *, channel: str = "self", declared_by: str | None = None,
                 session_factory=None) -> dict:  # noqa: ANN001
    """Store a declaration (after the shared commit) and return the answer with its passes.

    A key sent before with the same request returns the first answer (``duplicate``: true),
    read back with ``session_factory`` (a readonly transaction); with another request it is
    refused (409, ``key_reused``): never someone else's data or passes.
    """
    venue = await find_venue(ports.directory, data.venue_code)
    if len(data.people) > ports.max_group:
        raise DeclarationRefused(*TOO_MANY, max=ports.max_group)
    if ports.venue_limit is not None and (wait := ports.venue_limit(venue.code, len(data.people))):
        raise VenueRateLimited(wait)
    book = await ports.directory.rules()
    prepared = prepare(data, venue, book, ports.keys, now=datetime.now(UTC), valid_for=ports.valid_for,
                       seal_to=ports.seal_to, channel=channel, declared_by=declared_by)
    stored = await ports.committer.submit(prepared.submission, prepared.declarations, prepared.outbox,
                                          urgent=prepared.urgent)
    if stored:
        return prepared.answer
    async with session_factory() as session:
        answer = await answer_for_key(session, ports.keys, prepared.key, prepared.digest)
    return answer or prepared.answer


async def answer_for_key(session: AsyncSession, keys: PassKeys, key: str, digest: str) -> dict | None:
    """The first answer of ``key`` if it was sent with the request of ``digest``
    (a submission stored before digests were kept is never given out)."""
    submission = await session.get(Submission, key)
    if submission is None:
        return None
    if submission.digest != digest:
        raise DeclarationRefused(*KEY_REUSED)
    answer = await answer_for_submission(session, keys, submission.submission_id)
    if answer is not None:
        answer["duplicate"] = True
    return answer


async def answer_for_submission(session: AsyncSession, keys: PassKeys, submission_id: UUID) -> dict | None:
    rows = (await session.execute(select(Declaration).where(Declaration.submission_id == submission_id,
                                                            Declaration.erased_at.is_(None))
                                  .order_by(Declaration.member))).scalars().all()
    if not rows:
        return None
    return {"submission_id": str(submission_id), "duplicate": False, "rule_version": rows[0].rule_version,
            "venue_code": rows[0].venue_code,
            "declarations": [pass_item(keys, r.id, r.full_name, r.result, [x for x in r.reasons.split(",") if x],
                                       _aware(r.valid_until)) for r in rows]}


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
