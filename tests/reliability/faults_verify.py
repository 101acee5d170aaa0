"""After the faults: is every accepted item where it must be, once?

Read straight from each service's own database (read-only queries) and from the SMTP
server's inbox:

* a declaration the visitor got a 2xx for: stored in the declaration service, and counted
  in reporting exactly once. Reporting's per-declaration read model is any table of its
  database with a ``declaration_id`` column (the visits table); if reporting has none yet,
  the ``khaibao.declaration`` topic is read instead (every accepted declaration published
  at least once) and the note says so;
* a registration the unit got a 201 for: forwarded by intake and counted as forwarded in
  reporting's funnel, arrived at provisioning, one unit and its account issued, the credentials e-mailed (seen by the SMTP server) or
  in the district's Support Channel.

``lost`` = accepted but missing at any step; ``duplicates`` = rows beyond the first for
one item (declaration rows, reporting rows, units per registration, live credentials
deliveries per account).
"""
from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from .faults_load import Ledger
from .harness import FaultSystem


@dataclass
class Findings:
    declarations_stored: set[str] = field(default_factory=set)
    reporting_source: str = ""
    declarations_counted: set[str] = field(default_factory=set)
    # rows beyond the first, per declaration or registration id
    extra: Counter = field(default_factory=Counter)
    registrations_forwarded: set[str] = field(default_factory=set)
    registrations_arrived: set[str] = field(default_factory=set)
    registrations_in_funnel: set[str] = field(default_factory=set)   # reporting: counted as forwarded
    registrations_issued: set[str] = field(default_factory=set)
    credentials_emailed: set[str] = field(default_factory=set)     # registration ids
    credentials_in_channel: set[str] = field(default_factory=set)
    emailed_twice: set[str] = field(default_factory=set)         # registration ids

    def declaration_ok(self, declaration_id: str) -> bool:
        return declaration_id in self.declarations_stored and declaration_id in self.declarations_counted

    def registration_ok(self, registration_id: str) -> bool:
        return (registration_id in self.registrations_forwarded and registration_id in self.registrations_in_funnel
                and registration_id in self.registrations_issued
                and (registration_id in self.credentials_emailed or registration_id in self.credentials_in_channel))

    def complete(self, ledger: Ledger) -> bool:
        return (all(self.declaration_ok(d) for d in ledger.declarations)
                and all(self.registration_ok(r) for r in ledger.registrations))

    def missing(self, ledger: Ledger) -> dict[str, int]:
        return {
            "declarations not stored": sum(d not in self.declarations_stored for d in ledger.declarations),
            "declarations not in reporting": sum(d not in self.declarations_counted for d in ledger.declarations),
            "registrations not forwarded": sum(r not in self.registrations_forwarded for r in ledger.registrations),
            "registrations not at provisioning": sum(r not in self.registrations_arrived for r in ledger.registrations),
            "registrations not counted forwarded in reporting": sum(
                r not in self.registrations_in_funnel for r in ledger.registrations),
            "registrations without account": sum(r not in self.registrations_issued for r in ledger.registrations),
            "credentials neither e-mailed nor in the channel": sum(
                r not in self.credentials_emailed and r not in self.credentials_in_channel
                for r in ledger.registrations),
        }


async def _fetch(url: str, query: str, *args: object) -> list:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def _reporting_rows(system: FaultSystem, ids: list[str]) -> tuple[str, Counter] | None:
    """Rows per declaration id in reporting's per-declaration read model, if it has one."""
    url = system.pg_url("reporting")
    tables = [r["table_name"] for r in await _fetch(url, """
        SELECT table_name FROM information_schema.columns
        WHERE table_schema = 'public' AND column_name = 'declaration_id' ORDER BY table_name""")]
    if not tables:
        return None
    table = next((t for t in tables if "visit" in t), tables[0])
    rows = await _fetch(url, f'SELECT declaration_id::text AS id, count(*) AS n FROM "{table}" '
                             f"WHERE declaration_id::text = ANY($1::text[]) GROUP BY 1", ids)
    return f"reporting table {table}", Counter({r["id"]: r["n"] for r in rows})


async def _on_bus(system: FaultSystem, ids: set[str], timeout: float = 30.0) -> Counter:
    """declaration.submitted events on the bus by declaration id (a fresh consumer group)."""
    import uuid

    from libs.common.bus import create_bus
    from libs.common.events import parse_event

    bus = create_bus(f"kafka://{system.kafka.bootstrap}", client_id="reliability-verify")
    await bus.start()
    consumer = bus.consumer(f"reliability-verify-{uuid.uuid4().hex[:8]}", ["khaibao.declaration"])
    seen: Counter = Counter()
    try:
        await consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        idle = 0
        while loop.time() < deadline and idle < 6:
            messages = await consumer.poll(max_records=2000, timeout=0.5)
            idle = 0 if messages else idle + 1
            for message in messages:
                event = parse_event(message.value)
                if event.type == "declaration.submitted":
                    seen[str(event.data.declaration_id)] += 1
            if ids <= set(seen) and not messages:
                break
    finally:
        await consumer.stop()
        await bus.stop()
    return seen


async def verify(system: FaultSystem, ledger: Ledger, *, read_bus: bool = True) -> Findings:
    found = Findings()
    declarations = list(ledger.declarations)
    rows = await _fetch(system.pg_url("declaration"),
                        "SELECT id::text AS id, count(*) AS n FROM declarations WHERE id::text = ANY($1::text[]) "
                        "GROUP BY 1", declarations)
    found.declarations_stored = {r["id"] for r in rows}
    found.extra.update({r["id"]: r["n"] - 1 for r in rows if r["n"] > 1})
    counted = await _reporting_rows(system, declarations)
    if counted is not None:
        found.reporting_source, per_id = counted
        found.declarations_counted = set(per_id)
        found.extra.update({i: n - 1 for i, n in per_id.items() if n > 1})
    elif read_bus:
        found.reporting_source = "no per-declaration read model in reporting yet: checked the bus"
        found.declarations_counted = set(await _on_bus(system, set(declarations))) & set(declarations)

    registrations = list(ledger.registrations)
    rows = await _fetch(system.pg_url("intake"),
                        "SELECT id::text AS id FROM registrations WHERE id::text = ANY($1::text[]) "
                        "AND batch_id IS NOT NULL", registrations)
    found.registrations_forwarded = {r["id"] for r in rows}
    rows = await _fetch(system.pg_url("reporting"),
                        "SELECT registration_id::text AS id FROM registration_funnel "
                        "WHERE registration_id::text = ANY($1::text[]) AND forwarded", registrations)
    found.registrations_in_funnel = {r["id"] for r in rows}
    provisioning = system.pg_url("provisioning")
    rows = await _fetch(provisioning, "SELECT registration_id::text AS id FROM forwarded_units "
                                      "WHERE registration_id::text = ANY($1::text[])", registrations)
    found.registrations_arrived = {r["id"] for r in rows}
    units = await _fetch(provisioning, """
        SELECT u.registration_id::text AS registration_id, u.id AS unit_id, a.id AS account_id, a.username
        FROM units u JOIN accounts a ON a.unit_id = u.id
        WHERE u.registration_id::text = ANY($1::text[])""", registrations)
    unit_count = Counter(pair[0] for pair in {(r["registration_id"], r["unit_id"]) for r in units})
    found.extra.update({i: n - 1 for i, n in unit_count.items() if n > 1})
    found.registrations_issued = set(unit_count)
    by_account = {r["account_id"]: r for r in units}
    deliveries = await _fetch(system.pg_url("notification"), """
        SELECT account_id, username, status FROM deliveries
        WHERE account_id = ANY($1::uuid[]) AND status <> 'superseded'""", list(by_account))
    live = Counter(d["account_id"] for d in deliveries)
    found.extra.update({by_account[a]["registration_id"]: n - 1 for a, n in live.items() if n > 1})
    inbox = system.mail.inbox.usernames
    for delivery in deliveries:
        registration_id = by_account[delivery["account_id"]]["registration_id"]
        if delivery["status"] == "sent" and inbox[delivery["username"]] >= 1:
            found.credentials_emailed.add(registration_id)
        elif delivery["status"] == "channel":
            found.credentials_in_channel.add(registration_id)
    found.emailed_twice = {by_account[d["account_id"]]["registration_id"] for d in deliveries
                           if inbox[d["username"]] > 1}
    return found


async def wait_for_quiescence(system: FaultSystem, ledger: Ledger, timeout: float,
                              log=None) -> tuple[Findings, float]:  # noqa: ANN001
    """Verify again and again until everything accepted is through, or nothing has moved for
    ``timeout`` seconds (a consumer that is slow but catching up is lag, not loss; a hard cap
    of ten times ``timeout`` applies); ``log`` hears every 10 s what is still on its way."""
    loop = asyncio.get_running_loop()
    started = told = moved = loop.time()
    last = None
    while True:
        findings = await verify(system, ledger, read_bus=False)
        missing = sum(findings.missing(ledger).values())
        if last is None or missing < last:
            last, moved = missing, loop.time()
        if log is not None and loop.time() - told >= 10:
            told = loop.time()
            log(f"still on the way: {({k: v for k, v in findings.missing(ledger).items() if v})}")
        if findings.reporting_source and findings.complete(ledger):
            return findings, loop.time() - started
        stored_and_through = findings.reporting_source == "" and all(
            d in findings.declarations_stored for d in ledger.declarations) and all(
            findings.registration_ok(r) for r in ledger.registrations)
        if stored_and_through or loop.time() - moved > timeout or loop.time() - started > 10 * timeout:
            return await verify(system, ledger), loop.time() - started
        await asyncio.sleep(1.0)
