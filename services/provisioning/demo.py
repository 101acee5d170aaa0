"""Loads the shared demo data (libs.common.demo) into provisioning, once."""
from __future__ import annotations

import logging

from sqlalchemy import select

from libs.common import demo
from libs.common.auth import Role
from libs.common.runtime import Runtime

from .models import Account
from .service import create_account, create_unit_with_venues

log = logging.getLogger(__name__)


async def seed_demo(runtime: Runtime) -> None:
    async with runtime.database.transaction() as session:
        first = demo.DEMO_ACCOUNTS[0][0]
        if (await session.execute(select(Account.id).where(Account.username == first))).first():
            return
        unit, venues = await create_unit_with_venues(
            session, runtime.tree, name=demo.UNIT_NAME, address=demo.UNIT_ADDRESS, commune_path=demo.COMMUNE,
            venue_names=list(demo.VENUE_NAMES))
        for username, name, role, jurisdiction in demo.DEMO_ACCOUNTS:
            await create_account(
                session, username=username, name=name, role=role, jurisdiction=jurisdiction,
                password=demo.DEMO_PASSWORD, must_change_password=False,
                unit_id=unit.id if role in (Role.UNIT_ADMIN, Role.GATE_STAFF) else None)
    log.info("demo data loaded: %d accounts, one unit with %d venues", len(demo.DEMO_ACCOUNTS), len(venues))
