"""An issuing job at shutdown: it stops between two chunks and gives its lease back.

Provisioning is stopped in the middle of a job whose lease would last ten minutes: the
stop takes well under the grace period (no loop is cancelled), and the next start goes on
with the job at once instead of waiting for the lease to run out; every unit is issued once.
"""
from __future__ import annotations

import logging
import time
from uuid import UUID

from sqlalchemy import func, select

from libs.common.auth import Role
from libs.common.db import Database
from services.provisioning.models import IssueJob, Unit

from .conftest import Accounts, BatchSender, eventually, run_services, start_accounts
from .support import batch, unit

UNITS = 160


async def test_a_stopping_worker_pauses_the_job_and_the_next_start_resumes_it(make_settings, keys, mint):
    settings = start_accounts(make_settings, keys, mail=None, provisioning={
        "issue_chunk_size": 10, "job_lease_seconds": 600.0, "hash_workers": 1, "issue_poll_interval": 0.2,
        "shutdown_grace_seconds": 20})
    units = [unit(f"Cửa hàng số {i}", unit_type="business", gates=1) for i in range(UNITS)]
    city = mint.headers(Role.CITY_DIC)
    cancelled: list[str] = []

    class Warnings(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            cancelled.append(record.getMessage())

    handler = Warnings(logging.WARNING)
    logging.getLogger("libs.common.lifecycle").addHandler(handler)
    try:
        async with run_services({"provisioning": settings["provisioning"]}) as system:
            sender = await BatchSender.start(keys.data_dir, settings["provisioning"].bus_url)
            accounts = Accounts(system, sender, mint, None)
            try:
                batch_id = await accounts.batch_arrives(batch(units, reference="LO-DUNG-GIUA-CHUNG"))
                job = await accounts.issue(batch_id, wait=False)

                async def started():
                    state = (await accounts.provisioning.get(f"/api/jobs/{job['id']}", headers=city)).json()
                    return state if 0 < state["done"] < UNITS else None

                await eventually(started, what="a job under way")
            finally:
                await sender.stop()
            stopping_at = time.monotonic()
        stopped_in = time.monotonic() - stopping_at
    finally:
        logging.getLogger("libs.common.lifecycle").removeHandler(handler)
    assert stopped_in < 10, f"provisioning took {stopped_in:.1f}s to stop"
    assert not cancelled, cancelled

    # Paused half done, its lease given back: no waiting ten minutes for it to run out.
    database = Database(settings["provisioning"].resolved_database_url())
    try:
        async with database.transaction(readonly=True) as session:
            paused = await session.get(IssueJob, UUID(job["id"]))
            assert paused.status == "running" and 0 < paused.done < UNITS
            assert paused.lease_owner is None and paused.lease_until is None
    finally:
        await database.dispose()

    async with run_services({"provisioning": settings["provisioning"]}) as system:
        async def finished():
            state = (await system["provisioning"].get(f"/api/jobs/{job['id']}", headers=city)).json()
            return state if state["status"] == "done" else None

        final = await eventually(finished, timeout=60, what="the job finished after the restart")
        assert (final["done"], final["skipped"], final["failed"], final["total"]) == (UNITS, 0, 0, UNITS)
        async with system.runtime("provisioning").database.transaction(readonly=True) as session:
            assert (await session.execute(select(func.count()).select_from(Unit))).scalar_one() == UNITS
