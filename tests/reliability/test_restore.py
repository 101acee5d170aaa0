"""Issue 19: backups that restore -- the rehearsal, under load, to a point in time.

The five services run as processes on a private PostgreSQL (one database per service) with
WAL archiving to pgBackRest (tests/infra/pgbackrest_local.py; one stanza for the cluster,
so the five databases restore to one consistent point) and a private Kafka broker;
visitors declare the whole time. Under that load: a full backup, an incremental one, a
point in time is noted, the load goes on; then the cluster is destroyed (SIGKILL, data
directory removed), restored to the point into a fresh data directory, and the services
started on it again. The consumer groups are moved back to a minute before the point
(the runbook's step: deploy/RUNBOOK.md, "Restore"), so that the events the restored
databases had not handled yet are handled again (once: their ids are in the restored
``processed_events``).

Checked: every declaration answered 2xx before the point is in the restored declaration
database once; the outbox relays the rows that were pending at the point; the consumers
resume; reporting counts every restored declaration once. Declarations answered after
the point are lost with the restore (that is what a restore to a point means); reporting
may still count those the bus had carried, and the test prints how many. Figures printed:
backup sizes and times, restore time, counts.

Runs where the engines are (KHAIBAO_TEST_POSTGRES_URL / KHAIBAO_TEST_KAFKA_BOOTSTRAP set, as
.ci/run does) and pgbackrest is installed; skips loudly elsewhere.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests import engines
from tests.infra.pgbackrest_local import PgBackRest, find_pgbackrest
from tests.reliability.conftest import record_figure
from tests.reliability.faults_load import Ledger, Load
from tests.reliability.faults_verify import verify, wait_for_quiescence
from tests.reliability.harness import EnginesMissing, FaultSystem, Timing, check_engines

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
REWIND_SECONDS = 60  # the consumer groups go back this far before the point


@pytest.fixture
def engines_here() -> Path:
    if not (os.environ.get("KHAIBAO_TEST_POSTGRES_URL") and os.environ.get("KHAIBAO_TEST_KAFKA_BOOTSTRAP")):
        engines.unavailable("PostgreSQL and Kafka (the restore rehearsal starts private ones beside them)")
    if find_pgbackrest() is None:
        engines.unavailable("pgbackrest (apt-get install pgbackrest)")
    try:
        return check_engines()
    except EnginesMissing as exc:
        engines.unavailable(str(exc))


@dataclass
class Accepted:
    """Declaration ids of every 2xx answer, with the time it was received (monotonic)."""

    at: dict[str, float] = field(default_factory=dict)

    def install(self, client: httpx.AsyncClient) -> None:
        async def answered(response: httpx.Response) -> None:
            if (response.request.method == "POST" and response.request.url.path == "/api/declarations"
                    and response.status_code in (200, 201)):
                now = time.monotonic()
                await response.aread()
                for declared in response.json()["declarations"]:
                    self.at.setdefault(declared["id"], now)

        client.event_hooks["response"].append(answered)


async def fetchval(url: str, query: str, *args: object) -> object:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def rewind_consumer_groups(bootstrap: str, point_ms: int) -> dict[str, int]:
    """Every consumer group's committed offsets moved back to the first message at or after
    ``point_ms`` (the services are stopped: the groups have no members). Partitions moved per group."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    moved: dict[str, int] = {}
    try:
        groups = [g[0] for g in await admin.list_consumer_groups() if not g[0].startswith(("reliability-", "ha-"))]
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                continue
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
            await consumer.start()
            try:
                partitions = list(committed)
                consumer.assign(partitions)
                found = await consumer.offsets_for_times({tp: point_ms for tp in partitions})
                ends = await consumer.end_offsets(partitions)
                offsets = {tp: min(committed[tp].offset, (found[tp].offset if found[tp] else ends[tp]))
                           for tp in partitions}
                await consumer.commit(offsets)
                moved[group] = len(offsets)
            finally:
                await consumer.stop()
    finally:
        await admin.close()
    return moved


async def test_a_backup_taken_under_load_restores_to_a_point_in_time(engines_here, capsys) -> None:
    timing = Timing.of(False)
    work = Path(tempfile.mkdtemp(prefix="khaibao-restore-"))  # short: the server's Unix socket lives there
    system = FaultSystem(work, timing, engines_here)
    backups = PgBackRest(system.pg, work / "backups", retention_days=21)
    ledger = Ledger()
    accepted = Accepted()
    load: Load | None = None
    lines: list[str] = []
    t0 = time.monotonic()

    def say(text: str) -> None:
        lines.append(f"[{time.monotonic() - t0:6.1f} s] {text}")

    try:
        await system.start()
        await asyncio.to_thread(backups.configure)  # archiving on: one PostgreSQL restart
        say(f"system up, archiving to pgBackRest; PostgreSQL port {system.pg.port}")
        load = Load(system, ledger)
        accepted.install(load.client)
        load.tasks = [asyncio.create_task(load._declarations(), name="declarations")]  # visitors only
        await asyncio.sleep(3)
        full_seconds = await asyncio.to_thread(backups.backup, "full")
        await asyncio.sleep(2)
        incr_seconds = await asyncio.to_thread(backups.backup, "incr")
        say(f"full backup {full_seconds:.1f} s, incremental {incr_seconds:.1f} s, under load")
        await asyncio.sleep(2)
        point_mono = time.monotonic()
        point = await fetchval(system.pg_url("declaration"), "SELECT clock_timestamp()")
        say(f"restore point {point.isoformat()}")
        await asyncio.sleep(5)
        await load.stop_load()
        await load.stop_officials()
        load = None
        await asyncio.to_thread(backups.archive_now)
        before = {d for d, at in accepted.at.items() if at < point_mono}
        after = set(accepted.at) - before
        info = await asyncio.to_thread(backups.info)
        say(f"{len(before)} declarations answered 2xx before the point, {len(after)} after; "
            f"backups {[(b['label'], b['type'], b['info']['repository']['delta']) for b in info]}")

        # Disaster: the services stop, the cluster is destroyed.
        for service in system.services.values():
            await asyncio.to_thread(service.stop, 15)
        await asyncio.to_thread(system.pg.kill)
        shutil.rmtree(system.pg.pgdata)
        started = time.monotonic()
        files_seconds = await asyncio.to_thread(backups.restore, backups.target(point))
        await asyncio.to_thread(system.pg.start, 120)
        while await fetchval(system.pg_url("declaration"), "SELECT pg_is_in_recovery()"):
            await asyncio.sleep(0.2)
        restore_seconds = time.monotonic() - started
        pending = await fetchval(system.pg_url("declaration"), "SELECT count(*) FROM outbox")
        restored = await fetchval(system.pg_url("declaration"), "SELECT count(*) FROM declarations")
        say(f"restored in {restore_seconds:.1f} s (files {files_seconds:.1f} s, then WAL replay to the point); "
            f"{restored} declarations, {pending} outbox rows pending")
        moved = await rewind_consumer_groups(system.kafka.bootstrap, int(point.timestamp() * 1000) -
                                             REWIND_SECONDS * 1000)
        say(f"consumer groups rewound to the point - {REWIND_SECONDS} s: {moved}")
        for service in system.services.values():
            service.start()
        await asyncio.gather(*(s.wait_healthy(120) for s in system.services.values()))

        # Every declaration answered before the point: stored once, counted in reporting once.
        kept = Ledger(declarations={d: "before" for d in before})
        findings, waited = await wait_for_quiescence(system, kept, timing.quiescence, log=say)
        outbox_left = await fetchval(system.pg_url("declaration"), "SELECT count(*) FROM outbox")
        lost_after = await fetchval(system.pg_url("declaration"),
                                    "SELECT count(*) FROM declarations WHERE id::text = ANY($1::text[])",
                                    list(after))
        everything = await fetchval(system.pg_url("declaration"), "SELECT array_agg(id::text) FROM declarations")
        counted_all = await verify(system, Ledger(declarations={d: "all" for d in everything or []}), read_bus=False)
        in_reporting = await fetchval(system.pg_url("reporting"), "SELECT count(DISTINCT declaration_id) FROM visits")
        size = sum(b["info"]["repository"]["delta"] for b in info)
        figures = {"backup_full_bytes": info[0]["info"]["repository"]["delta"], "backup_repo_bytes": size,
                   "database_bytes": info[0]["info"]["size"], "full_seconds": round(full_seconds, 1),
                   "incr_seconds": round(incr_seconds, 1), "restore_seconds": round(restore_seconds, 1),
                   "restore_files_seconds": round(files_seconds, 1), "before_point": len(before),
                   "before_point_restored": sum(d in findings.declarations_stored for d in before),
                   "after_point": len(after), "after_point_restored": lost_after, "outbox_pending": pending,
                   "outbox_left": outbox_left, "reporting_caught_up_seconds": round(waited, 1),
                   "reporting_declarations": in_reporting, "restored_declarations": restored}
        say(f"figures: {figures}")
        record_figure("restore", **figures)
        with capsys.disabled():
            print("\n" + "\n".join(lines) + "\n")

        assert before, "no declaration accepted before the point"
        missing = [d for d in before if d not in findings.declarations_stored]
        assert not missing, f"{len(missing)} declarations answered 2xx before the point are not restored"
        uncounted = [d for d in before if d not in findings.declarations_counted]
        assert not uncounted, f"{len(uncounted)} declarations before the point are not in reporting"
        assert not findings.extra, f"counted twice: {dict(findings.extra)}"
        assert outbox_left == 0, "the outbox did not relay what was pending at the point"
        # Reporting counts every restored declaration once (and at most the ones after the
        # point that the bus had carried besides).
        assert not counted_all.extra
        assert set(everything) <= counted_all.declarations_counted
        assert restored <= in_reporting <= restored + len(after)
    finally:
        if load is not None:
            load.load_stopped.set()
            await load.stop_officials()
        await system.close()
        if not os.environ.get("KHAIBAO_KEEP_FAULT_DIR"):
            shutil.rmtree(work, ignore_errors=True)
