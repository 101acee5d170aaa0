"""Issuing is durable work: progress in the database, a lease, resumable after a restart.

Provisioning is stopped in the middle of a job and started again: the job goes on where
it was (its lease runs out, a worker claims it again) and ends with every unit issued
exactly once; the progress page shows it all along, without JavaScript.
"""
from __future__ import annotations

import re

from sqlalchemy import func, select

from libs.common.auth import Role

from .conftest import Accounts, BatchSender, eventually, run_services, start_accounts
from .support import batch, events_on_bus, unit

UNITS = 240


async def test_a_job_survives_a_restart_and_issues_each_unit_once(make_settings, keys, mint):
    settings = start_accounts(make_settings, keys, mail=None, provisioning={
        "issue_chunk_size": 20, "job_lease_seconds": 1.0, "hash_workers": 2, "issue_poll_interval": 0.2})
    units = [unit(f"Hộ kinh doanh số {i}", unit_type="business", gates=2) for i in range(UNITS)]
    city = mint.headers(Role.CITY_DIC)
    async with run_services({"provisioning": settings["provisioning"]}) as system:
        sender = await BatchSender.start(keys.data_dir, settings["provisioning"].bus_url)
        accounts = Accounts(system, sender, mint, None)
        try:
            batch_id = await accounts.batch_arrives(batch(units, reference="LO-KHOI-DONG-LAI"))
            job = await accounts.issue(batch_id, wait=False)

            async def halfway():
                state = (await accounts.provisioning.get(f"/api/jobs/{job['id']}", headers=city)).json()
                return state if 0 < state["done"] < UNITS else None

            state = await eventually(halfway, what="a job half done")
            # The progress page: a real progress bar, refreshed by the browser itself.
            page = await accounts.provisioning.get(f"/jobs/{job['id']}", headers={"accept": "text/html", **city})
            assert '<meta http-equiv="refresh" content="2">' in page.text
            assert re.search(r'<progress class="progress__bar" id="job-progress" max="240" value="\d+">', page.text)
            assert "<script" not in page.text
        finally:
            await sender.stop()
    assert state["status"] == "running"

    async with run_services({"provisioning": settings["provisioning"]}) as system:
        async def finished():
            state = (await system["provisioning"].get(f"/api/jobs/{job['id']}", headers=city)).json()
            return state if state["status"] == "done" else None

        final = await eventually(finished, timeout=120, what="the job finished after the restart")
        assert (final["done"], final["skipped"], final["failed"], final["total"]) == (UNITS, 0, 0, UNITS)
        page = await system["provisioning"].get(f"/jobs/{job['id']}", headers={"accept": "text/html", **city})
        assert "http-equiv" not in page.text and "Hoàn tất" in page.text

        from services.provisioning.models import Account, Unit, Venue

        async with system.runtime("provisioning").database.transaction(readonly=True) as session:
            unit_count = (await session.execute(select(func.count()).select_from(Unit))).scalar_one()
            admins = (await session.execute(select(func.count()).select_from(Account))).scalar_one()
            venues = (await session.execute(select(func.count(), func.count(func.distinct(Venue.code)))
                                            .select_from(Venue))).one()
            registrations = (await session.execute(select(func.count(func.distinct(Unit.registration_id))))
                             ).scalar_one()
        assert unit_count == admins == registrations == UNITS
        assert venues == (2 * UNITS, 2 * UNITS)

        async def all_published():
            events = await events_on_bus(settings["provisioning"].bus_url, "khaibao.provisioning", wait=0.5)
            issued = {e.data.account_id for e in events if e.type == "provisioning.account.issued"}
            return events if len(issued) == UNITS else None

        events = await eventually(all_published, timeout=60, what="every account.issued on the bus")
        completed = [e for e in events if e.type == "provisioning.issuance.completed"]
        assert len(completed) == 1 and completed[0].data.issued == UNITS
