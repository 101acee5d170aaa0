"""Subject requests (issue 17, item 5; Decree 13/2023/ND-CP, the data subject's rights): a
health officer finds every declaration of one ID number (or phone) within their
jurisdiction, exports them for the person, and erases them early on a lawful request.

The ID number and phone are stored encrypted (models.py): they are found through their
blind index columns (``id_number_index``, ``phone_index``, HMAC with the service's index
key), never compared in the database. Given both, a declaration must match both; given a
phone only, every declaration sent with that phone is found, the members of a family's
form included (the form's phone is the group's).

Rules, on the server:

- who: ``SUBJECT_ROLES`` (the health officers), within their jurisdiction only (the
  declarations of venues in it; another district's are neither found nor erased);
- a reference (the case or request file) and a reason are required for every step;
- erasing needs the request reference and an explicit confirmation; it erases in place what
  retention erases (``retention.ERASED``, the row stays for the counts), the person's
  suspected cases raised at the gate, and publishes ``declaration.person.erased`` with the
  ids only, so that every service holding a copy erases it (reporting's visits,
  notification's alerts);
- every step, done or refused, publishes ``declaration.person.accessed`` (who, from where,
  the reference, the outcome and how many, never the ID number): reporting writes it to the
  access log.

Use cases never commit: the route's transaction holds the reads, the erasure and the events.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, delete, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role, within
from libs.common.events.subject import PersonAccessed, PersonAccessedData, PersonErased, PersonErasedData
from libs.common.fieldcrypt import ring
from libs.common.outbox import publish
from libs.common.ui import N_

from ..models import RING, Declaration, Submission, SuspectedCase
from ..retention import ERASED, ERASED_CASE
from ..schemas import normalize_phone

SUBJECT_ROLES = (Role.HEALTH_OFFICER,)
MAX_FOUND = 5000


@dataclass
class SubjectForm:
    id_number: str = ""
    reference: str = ""
    reason: str = ""
    confirm: bool = False
    phone: str = ""


@dataclass(frozen=True)
class SubjectQuery:
    id_number: str | None
    reference: str
    reason: str
    phone: str | None = None

    def where(self, model):  # noqa: ANN001, ANN201 - Declaration or SuspectedCase
        """The person's rows of ``model``, by the blind indexes of what was given."""
        keys = ring(RING)
        clauses = []
        if self.id_number:
            clauses.append(model.id_number_index == keys.index(self.id_number, "id_number"))
        if self.phone:
            clauses.append(model.phone_index == keys.index(self.phone, "phone"))
        return and_(*clauses)


class SubjectInvalid(ValueError):
    """``errors``: field -> message id; ``code``: the access log's refusal code."""

    def __init__(self, errors: dict[str, str], code: str) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors
        self.code = code


def normalise_id(text: str) -> str:
    return re.sub(r"[\s.-]", "", text or "").upper()


def check_form(form: SubjectForm, need_id: bool = False) -> SubjectQuery:
    """The checked request. ``need_id`` (an export or an erasure, for the person): the ID
    number is required, a phone alone would also reach the other members of a family's form."""
    errors: dict[str, str] = {}
    code = None
    number = normalise_id(form.id_number)
    reference = " ".join((form.reference or "").split())
    reason = " ".join((form.reason or "").split())
    if not reference:
        errors["reference"] = N_("Enter the case or request reference.")
        code = "no_reference"
    elif len(reference) > 60:
        errors["reference"] = N_("The reference is at most 60 characters.")
    if not reason:
        errors["reason"] = N_("Enter the reason for this request.")
        code = code or "no_reason"
    elif len(reason) < 10 or len(reason) > 500:
        errors["reason"] = N_("Write the reason in a full sentence (10 to 500 characters).")
    phone = None
    if (form.phone or "").strip():
        try:
            phone = normalize_phone(form.phone.strip())
        except ValueError:
            errors["phone"] = N_("A phone number has 10 or 11 digits starting with 0, such as 0909 123 456.")
    if not number and not phone and "phone" not in errors:
        errors["id_number"] = N_("Enter the ID number (CCCD, CMND or passport), or the phone number.")
    elif need_id and not number:
        errors["id_number"] = N_("Exporting or erasing needs the person's ID number: a phone number may be shared "
                                 "by a family, whose other members did not ask.")
        code = code or "no_id_number"
    elif number and (not number.isascii() or not re.fullmatch(r"\d{9}|\d{12}|[A-Z0-9]{6,9}", number)):
        errors["id_number"] = N_("An ID number has 12 digits (CCCD), 9 digits (CMND) or 6 to 9 letters or digits "
                                 "(passport).")
    if errors:
        raise SubjectInvalid(errors, code or "bad_input")
    return SubjectQuery(number or None, reference, reason, phone)


def _mine(principal: Principal, query: SubjectQuery):  # noqa: ANN202
    return query.where(Declaration) & within(Declaration.commune_path, principal.jurisdiction)


async def find_person(session: AsyncSession, principal: Principal, query: SubjectQuery) -> list[Declaration]:
    """Every declaration of the person within the caller's jurisdiction, oldest first."""
    rows = await session.execute(select(Declaration).where(_mine(principal, query))
                                 .order_by(Declaration.submitted_at, Declaration.id).limit(MAX_FOUND))
    return list(rows.scalars())


async def record_step(session: AsyncSession, principal: Principal, action: str, *, outcome: str = "ok",
                      detail: str | None = None, reference: str | None = None, reason: str | None = None,
                      row_count: int = 0, client_address: str | None = None,
                      request_id: uuid.UUID | None = None) -> None:
    """The access log's entry of one step (reporting writes it), in the caller's transaction."""
    await publish(session, PersonAccessed(producer="declaration", jurisdiction=principal.jurisdiction,
                                          data=PersonAccessedData(
        request_id=request_id or uuid.uuid4(), action=action, outcome=outcome, detail=detail,
        reference=reference[:80] if reference else None, reason=reason[:500] if reason else None,
        row_count=row_count, client_address=client_address[:64] if client_address else None,
        actor_id=principal.account_id, actor_username=principal.username[:120], actor_name=principal.name[:200],
        actor_role=str(principal.role), actor_jurisdiction=principal.jurisdiction)))


async def erase_person(session: AsyncSession, principal: Principal, query: SubjectQuery,
                       now: datetime | None = None) -> tuple[uuid.UUID, int]:
    """Erase the person's declarations (and suspected cases) within the caller's jurisdiction;
    publish ``declaration.person.erased``. (request id, how many declarations were erased)."""
    now = now or datetime.now(UTC)
    request_id = uuid.uuid4()
    rows = (await session.execute(select(Declaration.id, Declaration.submission_id)
                                  .where(_mine(principal, query)))).all()
    ids = [r.id for r in rows]
    cases = list((await session.execute(select(SuspectedCase.id).where(
        within(SuspectedCase.commune_path, principal.jurisdiction),
        or_(query.where(SuspectedCase), SuspectedCase.declaration_id.in_(ids) if ids else false())))).scalars())
    if ids:
        await session.execute(update(Declaration).where(Declaration.id.in_(ids))
                              .values(**ERASED, erased_at=now).execution_options(synchronize_session=False))
        await session.execute(delete(Submission).where(Submission.submission_id.in_({r.submission_id for r in rows}))
                              .execution_options(synchronize_session=False))
    if cases:
        await session.execute(update(SuspectedCase).where(SuspectedCase.id.in_(cases))
                              .values(**ERASED_CASE)
                              .execution_options(synchronize_session=False))
    if ids or cases:
        await publish(session, PersonErased(producer="declaration", jurisdiction=principal.jurisdiction,
                                            data=PersonErasedData(request_id=request_id, declaration_ids=ids,
                                                                  case_ids=cases)))
    return request_id, len(ids)
