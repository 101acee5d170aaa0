"""Accounts of units: reset by the city or the district, disable and enable, gate staff.

A reset of a unit administrator makes a new random password, sealed for notification and
delivered like the first one (e-mail, else the district's Support Channel). Gate staff
are created and reset by their unit administrator, who hands the password over in
person: it is shown once on the page that answers the request and kept nowhere.
Every action leaves an audit entry; none logs or stores a password in clear.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import text as typed
from libs.common.auth import Principal, Role
from libs.common.events.provisioning import (
    AccountDisabled, AccountEnabled, AccountPasswordReset, AccountStateData, PasswordResetData, SealedCredentials,
)
from libs.common.outbox import publish

from . import access, audit, signins
from .issuing import credentials_key
from .models import Account, Unit
from .passwords import make_credentials
from .settings import ProvisioningSettings
from .signins.sessions import end_account_sessions

MAX_STAFF_PER_UNIT = 200


class AccountActionRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class OneTimePassword:
    """A gate staff password to show once; never stored, never logged."""

    account: Account
    password: str


async def accounts_of_unit(session: AsyncSession, unit_id: UUID) -> list[Account]:
    rows = await session.execute(select(Account).where(Account.unit_id == unit_id)
                                 .order_by(Account.role.desc(), Account.created_at))
    return list(rows.scalars())


async def get_account(session: AsyncSession, principal: Principal, account_id: UUID) -> Account | None:
    """The account if the principal may see it (its unit's or within its jurisdiction)."""
    account = await session.get(Account, account_id)
    if account is None or not access.may_see(principal, account.unit_id, account.jurisdiction):
        return None
    if principal.role not in (*access.ACCOUNT_MANAGERS, Role.UNIT_ADMIN, Role.COMMUNE_FOCAL):
        return None
    return account


def _check_manage(principal: Principal, account: Account) -> None:
    if str(account.id) == principal.account_id:
        raise AccountActionRefused("not_yourself")
    if not access.may_manage_account(principal, account.role, account.unit_id, account.jurisdiction):
        raise AccountActionRefused("not_allowed")


async def reset_password(session: AsyncSession, settings: ProvisioningSettings, principal: Principal,
                         account: Account, district_path: str, *, address: str | None = None) -> OneTimePassword | None:
    """A new random password. Unit administrators get it delivered (None is returned);
    for gate staff it is returned to be shown once to the unit administrator."""
    _check_manage(principal, account)
    unit = await session.get(Unit, account.unit_id) if account.unit_id else None
    if unit is None:
        raise AccountActionRefused("not_allowed")
    credentials_id = uuid.uuid4()
    deliver = account.role == Role.UNIT_ADMIN
    public_key = credentials_key(settings) if deliver else None
    [result] = await asyncio.to_thread(
        make_credentials, [(str(account.id), str(credentials_id))], settings.initial_password_time_cost,
        settings.initial_password_memory_kib, public_key)
    now = datetime.now(UTC)
    account.must_change_password = True
    await end_account_sessions(session, account_id=account.id, jurisdiction=account.jurisdiction,
                               reason="password_reset", token_ttl=settings.token_ttl_seconds)
    audit.record(session, principal, "password_reset", target=account.username, path=account.jurisdiction,
                 unit_id=account.unit_id)
    await signins.record(session, event="password_reset", outcome="success", account=account, address=address,
                         actor=principal)
    if not deliver:
        password_hash, password = result
        account.password_hash = password_hash
        return OneTimePassword(account, password)
    account.password_hash = result.password_hash
    account.credentials_id = credentials_id
    account.credentials_status = "queued"
    account.credentials_status_at = now
    base = settings.own_url()
    await publish(session, AccountPasswordReset(producer="provisioning", jurisdiction=account.jurisdiction,
                                                data=PasswordResetData(
        account_id=account.id, username=account.username, role=account.role, unit_id=unit.id,
        unit_name=unit.name, unit_address=unit.address, commune_path=unit.commune_path,
        district_path=district_path, registration_id=unit.registration_id, reference=unit.reference,
        contact_name=unit.contact_name, contact_email=unit.contact_email,
        venue_count=0, credentials=SealedCredentials(credentials_id=credentials_id, key_id=result.key_id,
                                                     sealed=result.sealed),
        signin_url=f"{base}/signin", guide_url=f"{base}/help/unit", posters_url=f"{base}/posters",
        reset_by_role=str(principal.role), reset_by_name=principal.name)))
    return None


async def set_disabled(session: AsyncSession, principal: Principal, account: Account, disabled: bool, *,
                       token_ttl: int = 1800, address: str | None = None) -> None:
    """``token_ttl``: provisioning's token lifetime (how long the revocation of a disabled
    account's sessions must last)."""
    _check_manage(principal, account)
    if account.disabled == disabled:
        return
    account.disabled = disabled
    if disabled:
        await end_account_sessions(session, account_id=account.id, jurisdiction=account.jurisdiction,
                                   reason="disabled", token_ttl=token_ttl)
    event = AccountDisabled if disabled else AccountEnabled
    audit.record(session, principal, "account_disabled" if disabled else "account_enabled", target=account.username,
                 path=account.jurisdiction, unit_id=account.unit_id)
    await signins.record(session, event="account_disabled" if disabled else "account_enabled", outcome="success",
                         account=account, address=address, actor=principal)
    await publish(session, event(producer="provisioning", jurisdiction=account.jurisdiction, data=AccountStateData(
        account_id=account.id, username=account.username, role=account.role, unit_id=account.unit_id,
        jurisdiction=account.jurisdiction, by_name=principal.name)))


async def create_gate_staff(session: AsyncSession, settings: ProvisioningSettings, principal: Principal,
                            unit: Unit, name: str) -> OneTimePassword:
    """A gate staff account of ``unit``; its password is returned to be shown once."""
    if not access.may_manage_staff(principal, unit.id, unit.commune_path):
        raise AccountActionRefused("not_allowed")
    try:  # the text policy (libs/common/text.py): a person's name
        name = typed.name(name, typed.FULL_NAME)
    except typed.TextRefused:
        raise AccountActionRefused("staff_name_text") from None
    if not 2 <= len(name) <= 200:
        raise AccountActionRefused("staff_name")
    staff = (await session.execute(select(func.count()).where(
        Account.unit_id == unit.id, Account.role == str(Role.GATE_STAFF)))).scalar_one()
    if staff >= MAX_STAFF_PER_UNIT:
        raise AccountActionRefused("too_many_staff")
    admin = (await session.execute(select(Account.username).where(
        Account.unit_id == unit.id, Account.role == str(Role.UNIT_ADMIN)).order_by(Account.created_at))).scalars().first()
    base = admin or f"dv{unit.commune_path.rsplit('/', 1)[-1]}-{str(unit.id)[:5]}"
    number = staff + 1
    while (await session.execute(select(Account.id).where(Account.username == f"{base}.cong{number}"))).first():
        number += 1
    account_id = uuid.uuid4()
    [(password_hash, password)] = await asyncio.to_thread(
        make_credentials, [(str(account_id), "")], settings.initial_password_time_cost,
        settings.initial_password_memory_kib, None)
    account = Account(id=account_id, username=f"{base}.cong{number}", name=name, role=str(Role.GATE_STAFF),
                      jurisdiction=unit.commune_path, unit_id=unit.id, password_hash=password_hash,
                      must_change_password=True, created_at=datetime.now(UTC),
                      created_by=audit.actor_id(principal))
    session.add(account)
    audit.record(session, principal, "staff_created", target=account.username, path=unit.commune_path,
                 unit_id=unit.id, detail=name)
    return OneTimePassword(account, password)
