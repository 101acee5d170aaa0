"""Issue 17, item 3: retention everywhere, proven with a moved clock.

The whole flow on the five real services (SQLite + the embedded bus, PostgreSQL + Kafka):
a demo venue reaches declaration; a person declares with a red result; notification
raises the alert and mails the district (a real SMTP server); reporting keeps the visit
and an officer exports it (the exposure .xlsx). Then the clock moves past
KHAIBAO_DATA_RETENTION_DAYS, every retention job runs (declaration, reporting,
notification, the embedded bus's pruning), and the person's ID number, phone and name
are searched for:

- in every database: every table, every column, as text (bytes decoded, JSON escapes too;
  a value encrypted at rest opened with the service's key ring: what the service holds);
- in the bus: embedded, the raw bytes of the bus file and its write-ahead log; Kafka deletes
  by time on the broker, so instead of waiting 21 days the test asserts that every topic's
  retention.ms is the one derived from KHAIBAO_DATA_RETENTION_DAYS (and says so);
- in the data folder's files (raw bytes: keys, rate-limit tables, and on the embedded
  backend the SQLite files themselves, where erased values must not linger in free space
  or in the write-ahead log);
- in the mail outbox (what the SMTP server received).
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from libs.common import fieldcrypt
from libs.common.auth import SESSION_COOKIE, Role
from libs.common.bus.embedded import EmbeddedBus
from libs.common.bus.retention import prune_bus
from libs.common.settings import SERVICES
from services.declaration.retention import erase_due
from services.notification.alerts import erase_expired as erase_alerts
from services.reporting.exposure import local_input
from services.reporting.retention import retention_pass
from tests.accounts.support import MailServer
from tests.reliability.flows import demo_venue, first_alert
from tests.services.conftest import DEMO_COMMUNE, DEMO_DISTRICT, build_settings, eventually, run_services

NAME = "Phạm Thị Hồng Nhung"
ID_NUMBER = "079301004567"
PHONE = "0912 345 678"
HTML = {"accept": "text/html"}


def _needles() -> dict[str, list[bytes]]:
    """What must be found nowhere, in the forms it can take in a file."""
    digits = re.sub(r"\D", "", PHONE)
    return {
        "ID number": [ID_NUMBER.encode()],
        "phone": [digits.encode(), PHONE.encode(), ("+84" + digits[1:]).encode(), digits[1:].encode()],
        "name": [NAME.encode(), json.dumps(NAME)[1:-1].encode(), NAME.encode("utf-16-le"),
                 NAME.split()[-2].encode() + b" " + NAME.split()[-1].encode()],
    }


def _found_in(data: bytes) -> list[str]:
    return [what for what, forms in _needles().items() if any(form in data for form in forms)]


async def _search_database(runtime, opened: bool = True) -> dict[str, list[str]]:  # noqa: ANN001
    """Every table and column of one service's database: {"table.column": [what was found]}.
    A sealed value (libs/common/fieldcrypt.py) is searched opened, with the service's ring
    (``opened=False``: as stored, what a copied disk shows)."""
    database = runtime.database
    ring = runtime.settings.field_ring()
    found: dict[str, list[str]] = {}
    async with database.engine.connect() as conn:
        metadata = MetaData()
        await conn.run_sync(lambda sync: metadata.reflect(sync))
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    if opened and isinstance(value, str) and fieldcrypt.is_sealed(value):
                        value = ring.open(value, f"{table.name}.{column}")
                    data = value if isinstance(value, bytes | bytearray | memoryview) else (
                        json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, dict | list)
                        else str(value)).encode()
                    hits = _found_in(bytes(data))
                    if hits:
                        found.setdefault(f"{table.name}.{column}", []).extend(hits)
    return found


def _search_files(folder: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        hits = _found_in(path.read_bytes())
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


@pytest.fixture
def mail():
    server = MailServer().start()
    try:
        yield server
    finally:
        server.stop()


async def test_after_retention_the_person_is_found_nowhere(backend, keys, mint, mail, tmp_path):
    namespace = backend.bus_options().get("namespace", "")
    settings = {}
    for service in SERVICES:
        extra = {}
        if service == "notification":
            extra = {"smtp_port": mail.port, "alert_poll_interval": 0.05, "alert_check_interval": 0.2,
                     "alert_retry_initial_seconds": 0.2, "alert_retry_max_seconds": 0.5}
        settings[service] = build_settings(
            service, keys, database_url=await backend.database_url(service), bus_url=backend.bus_url,
            bus_namespace=namespace, kafka_partitions=2, demo=service == "provisioning", **extra)
    retention_days = settings["declaration"].data_retention_days
    assert all(s.retention_days <= retention_days for s in settings.values() if hasattr(s, "retention_days"))

    async with run_services(settings) as system:
        officer = mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT)
        # The district health center wants its alerts by e-mail.
        saved = await system["notification"].post("/alerts/settings", headers={**HTML, **officer},
                                                  data={"emails": "ttyt@cangio.example.vn", "webhook_url": ""})
        assert saved.status_code == 303, saved.text[:300]
        code = (await demo_venue(system, mint))["code"]

        # The person declares: fever and cough, a red result.
        body = {"venue_code": code, "consent": True, "idempotency_key": uuid.uuid4().hex, "people": [{
            "full_name": NAME, "id_number": ID_NUMBER, "birth": "03/04/2001", "gender": "female", "phone": PHONE,
            "province_code": "79", "district_code": "787", "commune_code": "27664",
            "street": "45 Duyên Hải", "symptoms": ["fever", "cough"], "exposures": []}]}
        declared = await system["declaration"].post("/api/declarations", json=body)
        assert declared.status_code == 201, declared.text
        assert declared.json()["declarations"][0]["result"] == "red"

        alert = await first_alert(system, officer)
        await eventually(lambda: _value(len(mail.inbox.envelopes) >= 1), timeout=60, what="the alert e-mail")

        # Reporting has the visit: the exposure query finds the person, and the export carries them.
        now = datetime.now(UTC)
        query = {"venue": code, "case_reference": "CG-2026-0042", "reason": "Ca dương tính đã đến địa điểm",
                 "start": local_input(now - timedelta(hours=1)), "end": local_input(now + timedelta(minutes=5))}

        async def visit():
            response = await system["reporting"].post("/api/exposure", headers=officer, json=query)
            return response.status_code == 200 and response.json()["contacts"]

        contacts = await eventually(visit, timeout=60, what="the visit in reporting")
        assert contacts[0]["full_name"] == NAME
        console = {**HTML, "cookie": f"{SESSION_COOKIE}={mint.token(Role.HEALTH_OFFICER, DEMO_DISTRICT)}"}
        form = (await system["reporting"].get("/exposure", headers=console)).text
        token = re.search(r'name="csrf_token" value="([^"]*)"', form).group(1)
        export = await system["reporting"].post("/exposure/export", headers=console,
                                                data={**query, "csrf_token": token})
        assert export.status_code == 200 and export.headers["content-type"].startswith("application/vnd.openxml")
        # Before retention the person is there, everywhere we will look.
        before = {service: await _search_database(system.runtime(service)) for service in SERVICES}
        assert "ID number" in before["declaration"]["declarations.id_number"]  # opened with the service's ring
        assert not await _search_database(system.runtime("declaration"), opened=False)  # sealed as stored
        assert "name" in before["reporting"]["visits.full_name"]
        assert before["notification"]["alerts.person"]

        # The clock moves past the retention period; every retention job runs.
        later = datetime.now(UTC) + timedelta(days=retention_days, hours=1)
        declaration = system.runtime("declaration")
        await erase_due(declaration.database, now=later, days=declaration.settings.retention_days, batch=500,
                        pause=0)
        assert await retention_pass(system.runtime("reporting"), now=later) >= 1
        notification = system.runtime("notification")
        async with notification.database.transaction() as session:
            assert await erase_alerts(session, notification.settings, now=later) >= 1
        bus = declaration.bus
        if isinstance(bus, EmbeddedBus):
            report = await prune_bus(bus, retention_days=retention_days, service="test", now=later.timestamp())
            assert report.deleted > 0
        else:
            await _assert_kafka_retention(backend, namespace, settings["declaration"].bus_retention_ms())

        # Found nowhere: the databases, the bus, the data folder's files, the mail outbox.
        found = {service: await _search_database(system.runtime(service)) for service in SERVICES}
        assert {s: f for s, f in found.items() if f} == {}
        alert_page = await system["notification"].get(f"/alerts/{alert['id']}", headers={**HTML, **officer})
        assert _found_in(alert_page.content) == []
        for envelope in mail.inbox.envelopes:
            assert _found_in(bytes(envelope.original_content or envelope.content)) == []
    # Stopped: every file closed (and each SQLite database checkpointed) as an operator would copy them.
    assert _search_files(tmp_path) == {}


async def _value(value):  # noqa: ANN001, ANN202
    return value


async def _assert_kafka_retention(backend, namespace: str, expected_ms: int) -> None:  # noqa: ANN001
    """On Kafka the broker deletes by time: each of the system's topics keeps its messages
    exactly the derived period (not waited for here)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=backend.bus_url.removeprefix("kafka://"))
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if t.startswith(namespace))
        assert topics, "the flow created its topics"
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
        retention = {}
        for response in responses:
            for _code, _message, _type, name, entries in response.resources:
                for entry in entries:
                    if entry[0] == "retention.ms":
                        retention[name] = int(entry[1])
        assert retention == {t: expected_ms for t in topics}
    finally:
        await admin.close()


# --- backups (issue 19, item 4) -------------------------------------------------------------

def test_the_expiry_rule_drops_a_set_once_its_full_backup_is_older_than_retention() -> None:
    from tests.infra.pgbackrest_local import expired

    day = 86_400
    now = datetime(2026, 12, 31, tzinfo=UTC)
    at = now.timestamp()
    backups = [
        {"label": "F1", "type": "full", "prior": None, "timestamp": {"stop": at - 30 * day}},
        {"label": "F1_I1", "type": "incr", "prior": "F1", "timestamp": {"stop": at - 23 * day}},
        {"label": "F2", "type": "full", "prior": None, "timestamp": {"stop": at - 16 * day}},
        {"label": "F2_I1", "type": "incr", "prior": "F2", "timestamp": {"stop": at - 9 * day}},
        {"label": "F2_I2", "type": "incr", "prior": "F2_I1", "timestamp": {"stop": at - 2 * day}},
    ]
    assert expired(backups, now, 21) == ["F1"]
    assert expired(backups, now - timedelta(days=10), 21) == []   # F1 was 20 days old
    assert expired(backups, now + timedelta(days=6), 21) == ["F1", "F2"]


async def test_backups_older_than_retention_are_expired(tmp_path) -> None:
    """pgBackRest (WAL archiving, a full and an incremental backup) on a private server; with
    the clock moved past KHAIBAO_DATA_RETENTION_DAYS the backup set is expired (a new full
    backup replaces it: pgBackRest always keeps one) and its files leave the store."""
    import asyncio
    import os
    import shutil
    import tempfile

    from libs.common.settings import ServiceSettings
    from tests.infra.pgbackrest_local import PgBackRest, find_pgbackrest
    from tests.infra.postgres_local import LocalPostgres, find_pg_bin

    if find_pgbackrest() is None or find_pg_bin() is None:
        if os.environ.get("KHAIBAO_REQUIRE_ENGINES"):
            pytest.fail("pgbackrest or the PostgreSQL server binaries are missing")
        pytest.skip("pgbackrest or the PostgreSQL server binaries are missing (apt-get install pgbackrest)")
    retention = ServiceSettings.model_fields["data_retention_days"].default
    work = Path(tempfile.mkdtemp(prefix="khaibao-backups-"))  # short: the server's Unix socket lives there
    work.chmod(0o755)
    pg = LocalPostgres(work / "pg")
    try:
        await asyncio.to_thread(pg.start)
        backups = PgBackRest(pg, work / "backups", retention_days=retention)
        await asyncio.to_thread(backups.configure)
        await asyncio.to_thread(backups.backup, "full")
        await asyncio.to_thread(backups.backup, "incr")
        first = await asyncio.to_thread(backups.info)
        assert [b["type"] for b in first] == ["full", "incr"]
        assert f"repo1-retention-full={retention}" in backups.config.read_text()

        now = datetime.now(UTC)
        assert await asyncio.to_thread(backups.expire, now) == []
        assert await asyncio.to_thread(backups.expire, now + timedelta(days=retention - 1)) == []
        assert [b["label"] for b in await asyncio.to_thread(backups.info)] == [b["label"] for b in first]

        gone = await asyncio.to_thread(backups.expire, now + timedelta(days=retention, hours=1))
        assert gone == [first[0]["label"]]
        kept = await asyncio.to_thread(backups.info)
        assert [b["type"] for b in kept] == ["full"] and kept[0]["label"] not in {b["label"] for b in first}
        # No file of the expired set is left in the store.
        stored = {p.name for p in (work / "backups" / "repo" / "backup").rglob("*") if p.is_dir()}
        assert not {b["label"] for b in first} & stored
    finally:
        await asyncio.to_thread(pg.kill)
        shutil.rmtree(work, ignore_errors=True)
