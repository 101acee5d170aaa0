"""On the record: every sign-in and account security event (issue 16, item 5).

``record`` is the one function every path calls: ``tokens.sign_in`` (success, failure,
throttled: any outcome string passes through), the console's sign-out and
password change, and the account actions of accounts.py (reset, disable, enable; no
operation changes an account's role or jurisdiction, so there is no role-change event).
Each call leaves

- a row of ``signin_events`` (models.SignInEvent): the account when the username names
  one, else the username as typed (text-policy cleaned, cut at 80 characters); the client
  address as the rate limits see it (``ratelimit.client_address``: the peer, or the
  address a trusted proxy forwarded); the time; the outcome; the official who acted for
  a reset, disable or enable;
- one log line (``account_event``, ``outcome``, ``account_id``, ``client_address`` as
  fields of the JSON object): never the password, the token, nor a username as typed
  (people type their password into the username field);
- a metric: ``khaibao_signins_total{outcome}`` for sign-ins,
  ``khaibao_account_events_total{event, outcome}`` for the others (never labelled by
  account or address).

Given a ``Runtime`` instead of a session, ``record`` writes in a transaction of its own:
a refused sign-in or password change is on the record although the caller's work is not
committed. Rows older than ``signin_history_days`` are deleted by ``run_retention``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from prometheus_client import Counter
from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import text as typed
from libs.common.auth import Principal, Role, within
from libs.common.runtime import Runtime

from ..models import Account, SignInEvent
from ..web import VIETNAM_TIME

log = logging.getLogger(__name__)

# Sign-ins (API and console) by outcome: success, failure (wrong credentials, disabled
# account), throttled. Never labelled by user name or address.
SIGNINS = Counter("khaibao_signins_total", "Sign-in attempts by outcome", ["service", "outcome"])
ACCOUNT_EVENTS = Counter(
    "khaibao_account_events_total",
    "Sign-outs, password changes and resets, accounts disabled and enabled, by outcome",
    ["service", "event", "outcome"],
)

EVENTS = ("signin", "signout", "password_change", "password_reset", "account_disabled", "account_enabled")
OUTCOMES = ("success", "failure", "throttled", "refused")
VIEWERS = (Role.CITY_DIC, Role.DISTRICT_FOCAL)
PAGE_SIZE = 50
EXPORT_LIMIT = 20_000


def _clean_username(value: str) -> str:
    return typed.scrub(value or "", 80)


async def record(target: Runtime | AsyncSession, *, outcome: str, event: str = "signin", username: str = "",
                 account: Account | None = None, address: str | None = None, actor: Principal | None = None,
                 detail: str | None = None, at: datetime | None = None) -> SignInEvent:
    """Put one event on the record (row, log line, metric); see the module docstring."""
    if isinstance(target, Runtime):
        async with target.database.transaction() as session:
            return await record(session, outcome=outcome, event=event, username=username, account=account,
                                address=address, actor=actor, detail=detail, at=at)
    assert event in EVENTS, event
    session = target
    outcome = (outcome or "unknown")[:20]
    if account is None and username and typed.refusal(username) is None:
        account = (await session.execute(select(Account).where(
            Account.username == username.strip().lower()[:80]))).scalar_one_or_none()
    if detail is None and event == "signin" and outcome != "success":
        detail = "unknown_username" if account is None else ("account_disabled" if account.disabled else None)
    actor_id = None
    if actor is not None:
        try:
            actor_id = UUID(actor.account_id)
        except ValueError:
            actor_id = None
    row = SignInEvent(
        at=at or datetime.now(UTC), event=event, outcome=outcome,
        username=account.username if account is not None else _clean_username(username),
        account_id=account.id if account is not None else None,
        role=account.role if account is not None else None,
        jurisdiction=account.jurisdiction if account is not None else None,
        unit_id=account.unit_id if account is not None else None,
        address=(address or None) and address[:64], actor_id=actor_id,
        actor_name=actor.name[:200] if actor is not None else None, detail=(detail or None) and detail[:60],
    )
    session.add(row)
    if event == "signin":
        SIGNINS.labels("provisioning", outcome).inc()
    else:
        ACCOUNT_EVENTS.labels("provisioning", event, outcome).inc()
    account_ref = str(account.id) if account is not None else "unknown"
    log.log(logging.WARNING if outcome == "throttled" else logging.INFO,
            "account event %s %s (account %s, from %s)", event, outcome, account_ref, address or "-",
            extra={"account_event": event, "outcome": outcome, "account_id": account_ref,
                   "client_address": address or None})
    return row


async def record_principal(target: Runtime | AsyncSession, principal: Principal, *, event: str, outcome: str,
                           address: str | None, detail: str | None = None) -> SignInEvent:
    """An event of the signed-in account itself (sign-out, password change)."""
    if isinstance(target, Runtime):
        async with target.database.transaction() as session:
            return await record_principal(session, principal, event=event, outcome=outcome, address=address,
                                          detail=detail)
    account = None
    try:
        account = await target.get(Account, UUID(principal.account_id))
    except ValueError:
        pass
    return await record(target, event=event, outcome=outcome, username=principal.username, account=account,
                        address=address, detail=detail)


# --- reading the history ------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """What the history page and its export select (all optional, all checked by ``parse``)."""

    start: date | None = None
    end: date | None = None
    outcome: str = ""
    event: str = ""
    username: str = ""
    area: str = ""

    @classmethod
    def parse(cls, principal: Principal, *, start: str | None, end: str | None, outcome: str | None,
              event: str | None, username: str | None, area: str | None) -> "Filters":
        def day(value: str | None) -> date | None:
            try:
                return date.fromisoformat(value) if value else None
            except ValueError:
                return None

        cleaned = _clean_username(username or "")
        return cls(start=day(start), end=day(end), outcome=outcome if outcome in OUTCOMES else "",
                   event=event if event in EVENTS else "",
                   username=cleaned if typed.refusal(cleaned) is None else "",
                   area=area if area and principal.covers(area) else "")

    def query(self) -> dict[str, str]:
        values = {"from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else "",
                  "outcome": self.outcome, "event": self.event, "q": self.username, "area": self.area}
        return {k: v for k, v in values.items() if v}


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, VIETNAM_TIME).astimezone(UTC)


def jurisdiction_scope(principal: Principal) -> ColumnElement[bool]:
    """The rows the principal may read: accounts of its jurisdiction; the city also reads
    attempts with usernames that name no account."""
    scope = within(SignInEvent.jurisdiction, principal.jurisdiction)
    if principal.role == Role.CITY_DIC:
        scope = or_(scope, SignInEvent.jurisdiction.is_(None))
    return scope


def _where(principal: Principal, filters: Filters) -> ColumnElement[bool]:
    clauses = [jurisdiction_scope(principal)]
    if principal.role not in VIEWERS:
        clauses.append(SignInEvent.id.is_(None))  # nothing (the routes refuse them already)
    if filters.start:
        clauses.append(SignInEvent.at >= _local_midnight(filters.start))
    if filters.end:
        clauses.append(SignInEvent.at < _local_midnight(filters.end + timedelta(days=1)))
    if filters.outcome:
        clauses.append(SignInEvent.outcome == filters.outcome)
    if filters.event:
        clauses.append(SignInEvent.event == filters.event)
    if filters.username:
        clauses.append(func.lower(SignInEvent.username).contains(filters.username.lower(), autoescape=True))
    if filters.area:
        clauses.append(within(SignInEvent.jurisdiction, filters.area))
    return and_(*clauses)


async def history_page(session: AsyncSession, principal: Principal, filters: Filters,
                       page: int = 1) -> tuple[list[SignInEvent], int]:
    where = _where(principal, filters)
    total = (await session.execute(select(func.count()).select_from(SignInEvent).where(where))).scalar_one()
    rows = await session.execute(select(SignInEvent).where(where)
                                 .order_by(SignInEvent.at.desc(), SignInEvent.id)
                                 .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return list(rows.scalars()), total


async def history_rows(session: AsyncSession, principal: Principal, filters: Filters,
                       limit: int = EXPORT_LIMIT) -> Sequence[SignInEvent]:
    rows = await session.execute(select(SignInEvent).where(_where(principal, filters))
                                 .order_by(SignInEvent.at.desc(), SignInEvent.id).limit(limit))
    return list(rows.scalars())


# --- retention ----------------------------------------------------------------------------

async def prune(session: AsyncSession, *, days: int, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete up to ``batch_size`` rows older than ``days``; how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    ids = list((await session.execute(select(SignInEvent.id).where(SignInEvent.at < cutoff)
                                      .limit(batch_size))).scalars())
    if ids:
        await session.execute(delete(SignInEvent).where(SignInEvent.id.in_(ids)))
    return len(ids)


async def retention_pass(runtime: Runtime, now: datetime | None = None) -> int:
    settings = runtime.settings
    total = 0
    while True:
        async with runtime.database.transaction() as session:
            deleted = await prune(session, days=settings.signin_history_days, now=now)
        total += deleted
        if deleted < 5000 or runtime.stopping.is_set():
            break
    if total:
        log.info("sign-in history: %d events older than %d days deleted", total, settings.signin_history_days)
    return total


async def run_retention(runtime: Runtime) -> None:
    """The background loop (supervised: restarted after a crash, cancelled at shutdown)."""
    while not runtime.stopping.is_set():
        await retention_pass(runtime)
        await runtime.pause(runtime.settings.signin_retention_interval_seconds)
