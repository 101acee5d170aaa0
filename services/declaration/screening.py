"""Screening: a versioned rule set, kept as data, evaluated against a declaration's answers.

A rule set is a JSON document (the first one ships in ``rules/2021-06.json``; later versions
are proposed by a city health officer and activated when a second one approves, stored in
the ``rule_sets`` table, one active). Each rule names
the answers it needs (``all``: every one of them; ``any``: at least one) and the result
it gives; a declaration gets the most severe result of the rules it matches, and the ids
of those rules as its reasons. The version is stored with each declaration.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role
from libs.common.ui import N_

from .models import RuleSet

DEFAULT_RULES = Path(__file__).parent / "rules" / "2021-06.json"
SEVERITY = {"green": 0, "yellow": 1, "red": 2}

# The questions of the 2021 domestic form ("in the last 14 days"): code, English label.
SYMPTOMS = (
    ("fever", N_("Fever")),
    ("cough", N_("Cough")),
    ("breathless", N_("Shortness of breath")),
    ("sore_throat", N_("Sore throat")),
    ("taste_smell", N_("Loss of taste or smell")),
    ("fatigue", N_("Fatigue")),
)
EXPOSURES = (
    ("close_contact", N_("Close contact with a confirmed or suspected case of COVID-19")),
    ("from_abroad", N_("Came from another country or territory")),
    ("outbreak_area", N_("Passed through a province or city with an outbreak")),
    ("household_fever", N_("Someone at home or at work has a fever or a cough")),
)
SYMPTOM_CODES = frozenset(code for code, _ in SYMPTOMS)
EXPOSURE_CODES = frozenset(code for code, _ in EXPOSURES)
# "other_symptom" is set when the visitor describes another symptom in words.
ANSWER_CODES = SYMPTOM_CODES | EXPOSURE_CODES | {"other_symptom"}

Result = Literal["green", "yellow", "red"]


class Text2(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vi: str = Field(min_length=1, max_length=1000)
    en: str = Field(min_length=1, max_length=1000)


class RuleDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    result: Result
    all: list[str] = Field(default_factory=list)
    any: list[str] = Field(default_factory=list)
    label: Text2

    @field_validator("all", "any")
    @classmethod
    def _known(cls, codes: list[str]) -> list[str]:
        unknown = sorted(set(codes) - ANSWER_CODES)
        if unknown:
            raise ValueError(f"unknown answer codes {unknown}; known: {sorted(ANSWER_CODES)}")
        return codes

    @model_validator(mode="after")
    def _not_empty(self) -> "RuleDoc":
        if not self.all and not self.any:
            raise ValueError(f"rule {self.id!r} names no answer (all or any)")
        return self


class RuleSetDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")
    description: str = Field(default="", max_length=500)
    rules: list[RuleDoc] = Field(min_length=1, max_length=100)
    advice: dict[Result, Text2]

    @model_validator(mode="after")
    def _complete(self) -> "RuleSetDoc":
        missing = {"green", "yellow", "red"} - set(self.advice)
        if missing:
            raise ValueError(f"advice is missing for {sorted(missing)}")
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        return self


class InvalidRuleSet(ValueError):
    """The document is not a valid rule set; the message says where."""


@dataclass(frozen=True)
class CompiledRule:
    id: str
    severity: int
    result: str
    all: frozenset[str]
    any: frozenset[str]


class RuleBook:
    """A parsed rule set, ready to screen answers quickly."""

    def __init__(self, doc: RuleSetDoc) -> None:
        self.doc = doc
        self.version = doc.version
        self.rules = tuple(CompiledRule(r.id, SEVERITY[r.result], r.result, frozenset(r.all), frozenset(r.any))
                           for r in doc.rules)
        self.labels = {r.id: r.label for r in doc.rules}

    @classmethod
    def parse(cls, text: str | bytes) -> "RuleBook":
        try:
            return cls(RuleSetDoc.model_validate_json(text))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}"
                                 for e in exc.errors(include_url=False, include_input=False))
            raise InvalidRuleSet(problems) from None

    def screen(self, answers: frozenset[str]) -> tuple[str, tuple[str, ...]]:
        """The result and the ids of the matched rules of that severity."""
        best = 0
        matched: list[CompiledRule] = []
        for rule in self.rules:
            if rule.all and not rule.all <= answers:
                continue
            if rule.any and rule.any.isdisjoint(answers):
                continue
            matched.append(rule)
            best = max(best, rule.severity)
        if not matched:
            return "green", ()
        result = next(r.result for r in matched if r.severity == best)
        return result, tuple(r.id for r in matched if r.severity == best)

    def label(self, rule_id: str, lang: str) -> str:
        text = self.labels.get(rule_id)
        return (text.en if lang == "en" else text.vi) if text else rule_id

    def advice(self, result: str, lang: str) -> str:
        text = self.doc.advice[result]  # type: ignore[index]
        return text.en if lang == "en" else text.vi


def answer_codes(symptoms: tuple[str, ...], exposures: tuple[str, ...], symptom_other: str | None) -> frozenset[str]:
    codes = set(symptoms) | set(exposures)
    if symptom_other:
        codes.add("other_symptom")
    return frozenset(codes)


# --- use cases (the caller owns the transaction) ----------------------------------------

async def ensure_rule_set(session: AsyncSession, default_file: Path | None = None) -> None:
    """An empty table gets the shipped rule set, active (web workers starting together: once)."""
    if (await session.execute(select(RuleSet.version).limit(1))).first():
        return
    text = Path(default_file or DEFAULT_RULES).read_text(encoding="utf-8")
    book = RuleBook.parse(text)
    insert = (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(RuleSet.__table__)
    now = datetime.now(UTC)
    await session.execute(insert.values(version=book.version, rules=text, active=True, created_at=now,
                                        created_by="system", activated_at=now)
                          .on_conflict_do_nothing(index_elements=["version"]))


async def active_rule_book(session: AsyncSession) -> RuleBook:
    row = (await session.execute(select(RuleSet).where(RuleSet.active).limit(1))).scalar_one_or_none()
    if row is None:
        return RuleBook.parse(DEFAULT_RULES.read_text(encoding="utf-8"))
    return RuleBook.parse(row.rules)


async def list_rule_sets(session: AsyncSession) -> list[RuleSet]:
    return list((await session.execute(select(RuleSet).order_by(RuleSet.created_at.desc()))).scalars())


# --- the two-person rule (DOMAIN.md: the city health department proposes, a second officer approves)

CITY_HEALTH_ONLY = N_("Only an officer of the city health department (Sở Y tế) may propose, approve or withdraw "
                      "a screening rule set.")
OWN_PROPOSAL = N_("The proposer cannot approve their own rule set: another officer of the city health department "
                  "must approve it.")
NOT_PENDING = N_("This rule set is not waiting for approval any more.")
NO_SUCH_RULE_SET = N_("There is no rule set with this version.")


class RuleSetRefused(Exception):
    """A step of the two-person rule refused: ``status`` and the English msgid of the reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def may_decide(principal: Principal, city_path: str) -> bool:
    """A health officer of the city (not of a district) proposes and approves rule sets."""
    return principal.role == Role.HEALTH_OFFICER and principal.jurisdiction == city_path


def _who(principal: Principal) -> str:
    return f"{principal.name} ({principal.username})"[:200] if principal.name else principal.username[:200]


async def propose_rule_set(session: AsyncSession, text: str, *, by: Principal, city_path: str) -> RuleBook:
    """Validate and store a new version, waiting for a second official's approval."""
    book = RuleBook.parse(text)
    if not may_decide(by, city_path):
        raise RuleSetRefused(403, CITY_HEALTH_ONLY)
    if await session.get(RuleSet, book.version) is not None:
        raise InvalidRuleSet(f"version {book.version!r} exists already: give the new rule set a new version")
    session.add(RuleSet(version=book.version, rules=json.dumps(json.loads(text), ensure_ascii=False, indent=2),
                        active=False, created_at=datetime.now(UTC), created_by=_who(by), created_by_id=by.account_id))
    return book


async def _pending(session: AsyncSession, version: str, by: Principal, city_path: str) -> RuleSet:
    # Locks the versions (PostgreSQL), so that two approvals at once leave one active set.
    rows = (await session.execute(select(RuleSet).with_for_update())).scalars().all()
    row = next((r for r in rows if r.version == version), None)
    if row is None:
        raise RuleSetRefused(404, NO_SUCH_RULE_SET)
    if not may_decide(by, city_path):
        raise RuleSetRefused(403, CITY_HEALTH_ONLY)
    if row.state != "pending":
        raise RuleSetRefused(409, NOT_PENDING)
    return row


async def approve_rule_set(session: AsyncSession, version: str, *, by: Principal, city_path: str) -> RuleSet:
    """A second official approves a pending version: it becomes the active one."""
    row = await _pending(session, version, by, city_path)
    if row.created_by_id == by.account_id:
        raise RuleSetRefused(403, OWN_PROPOSAL)
    now = datetime.now(UTC)
    await session.execute(update(RuleSet).where(RuleSet.active).values(active=False))
    row.active, row.approved_at, row.approved_by, row.approved_by_id, row.activated_at = (
        True, now, _who(by), by.account_id, now)
    return row


async def reject_rule_set(session: AsyncSession, version: str, *, by: Principal, city_path: str) -> RuleSet:
    """The proposer withdraws a pending version, or another official declines it."""
    row = await _pending(session, version, by, city_path)
    row.rejected_at, row.rejected_by = datetime.now(UTC), _who(by)
    return row
