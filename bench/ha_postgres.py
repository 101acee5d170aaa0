"""The PostgreSQL primary SIGKILLed under load: the services fail over to the standby by themselves.

    python -m bench.ha_postgres          # about 3 minutes on the shared 2-core machine

The five services run as processes (tests/reliability/harness.py) on a pg_auto_failover pair
(tests/infra/postgres_ha.py: monitor, primary, synchronous standby; multi-host URLs with
``target_session_attrs=read-write``) and a private single Kafka broker; visitors declare and
units register the whole time (tests/reliability/faults_load.py). Then the node that is
primary is SIGKILLed (its keeper and its PostgreSQL, as a machine that dies): the monitor
promotes the standby, the services reconnect to it without a restart, the old primary is
started again and rejoins as standby. Afterwards every declaration answered 2xx is looked up
(tests/reliability/faults_verify.py): stored once, counted in reporting once, published on
the bus (distinct events once; the relay may deliver an event again after a failover, the
consumers skip it by its id).

``primary_sigkill(system, ledger, answers)`` performs the fault on any running system whose
``pg`` is a ``PostgresHA`` and returns its phase; ``fault_row(phase, ledger, findings,
answers)`` makes the table row (bench.ha puts it with the Kafka faults).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.reliability_faults import Phase, _row, markdown
from tests.infra.postgres_ha import PostgresHA, find_autoctl
from tests.reliability.faults_load import Ledger, Load
from tests.reliability.faults_verify import Findings, wait_for_quiescence
from tests.reliability.harness import FaultSystem, Timing, check_engines

KEY = "pg-primary"
NAME = "SIGKILL PostgreSQL primary"
COLUMNS = ("fault", "duration", "accepted", "refused", "p99", "full service after", "stored", "duplicates", "lost",
           "notes")


class HAEnginesMissing(RuntimeError):
    """pg_auto_failover is not installed."""


def check_ha_engines() -> Path:
    if find_autoctl() is None:
        raise HAEnginesMissing("no pg_autoctl: apt-get install postgresql-15-auto-failover pg-auto-failover-cli")
    return check_engines()


@dataclass
class HASystem(FaultSystem):
    """The faults-under-load system with a pg_auto_failover pair instead of one server."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.pg = PostgresHA(self.work / "postgres-ha")  # type: ignore[assignment]

    def pg_url(self, service: str) -> str:
        """libpq's multi-host URL of the service's database (asyncpg reads it as is)."""
        return self.pg.url_for(f"khaibao_{service}")


@dataclass
class Answers:
    """Every answer to POST /api/declarations: (sent, answered, status), monotonic seconds."""

    rows: list[tuple[float, float, int | str]] = field(default_factory=list)

    def install(self, client: httpx.AsyncClient) -> None:
        async def sent(request: httpx.Request) -> None:
            request.extensions["khaibao_sent"] = time.monotonic()

        async def answered(response: httpx.Response) -> None:
            request = response.request
            if request.method == "POST" and request.url.path == "/api/declarations":
                self.rows.append((request.extensions.get("khaibao_sent", time.monotonic()), time.monotonic(),
                                  response.status_code))

        client.event_hooks["request"].append(sent)
        client.event_hooks["response"].append(answered)

    def between(self, start: float, end: float) -> list[tuple[float, float, int | str]]:
        """The answers received from ``start`` to ``end``."""
        return [r for r in self.rows if start <= r[1] <= end]


@dataclass
class FaultPhase(Phase):
    started: float = 0.0
    ended: float = 0.0
    failover_seconds: float = 0.0
    rejoin_seconds: float = 0.0
    # what the visitors were told meanwhile: status (or connection error) -> count
    told: Counter = field(default_factory=Counter)


async def primary_sigkill(system: FaultSystem, ledger: Ledger, settle: float = 2.0) -> FaultPhase:
    """SIGKILL the primary node, wait for the standby's promotion, bring the old primary back
    as standby, let the load settle; the phase (its key tags what was accepted meanwhile)."""
    pg: PostgresHA = system.pg  # type: ignore[assignment]
    ledger.phase = KEY
    before = Counter(ledger.declaration_answers)
    started = time.monotonic()
    old = await asyncio.to_thread(pg.kill_primary)
    await asyncio.to_thread(pg.wait_failover, old, 120)
    failover = time.monotonic() - started  # from the kill to a writable primary
    # Some load on the new primary alone, then the old one rejoins (pg_rewind, catch-up).
    await asyncio.sleep(settle)
    rejoin = await asyncio.to_thread(pg.restart_node, old, 180)
    await asyncio.sleep(settle)
    ended = time.monotonic()
    note = (f"node {old} killed; standby promoted after {failover:.1f} s; {old} back as standby after "
            f"{rejoin:.1f} s")
    return FaultPhase(NAME, KEY, ended - started, note, started=started, ended=ended, failover_seconds=failover,
                      rejoin_seconds=rejoin, told=Counter(ledger.declaration_answers) - before)


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def fault_row(phase: FaultPhase, ledger: Ledger, findings: Findings, answers: Answers) -> dict:
    """The table row: accepted, refused (by status), p99 of the answers, the time from the
    kill to the last refusal (full service after), and stored / duplicates / lost."""
    row = _row(phase, ledger, findings)
    during = answers.between(phase.started, phase.ended)
    refused = Counter({s: n for s, n in phase.told.items() if s not in (200, 201)}) if phase.told else Counter(
        status for _, _, status in during if status not in (200, 201))
    last_refused = max((answered for _, answered, status in during if status not in (200, 201)), default=None)
    full_service = 0.0 if last_refused is None else last_refused - phase.started
    row.update({
        "refused": ", ".join(f"{n} × {s}" for s, n in refused.most_common()) or "0",
        "refused_count": sum(refused.values()),
        "p99": f"{p99([answered - sent for sent, answered, _ in during]) * 1000:.0f} ms",
        "full service after": f"{full_service:.1f} s",
        "full_service_seconds": full_service,
        "failover_seconds": phase.failover_seconds,
        "rejoin_seconds": phase.rejoin_seconds,
    })
    return row


async def bus_copies(system: FaultSystem, ids: set[str], timeout: float = 60.0) -> tuple[Counter, Counter]:
    """(distinct declaration.submitted events, messages) per declaration id on khaibao.declaration."""
    from libs.common.bus import create_bus
    from libs.common.events import parse_event

    bus = create_bus(f"kafka://{system.kafka.bootstrap}", client_id="ha-verify")
    await bus.start()
    consumer = bus.consumer(f"ha-verify-{uuid.uuid4().hex[:8]}", ["khaibao.declaration"])
    events: dict[str, set[str]] = {}
    messages: Counter = Counter()
    try:
        await consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        idle = 0
        while loop.time() < deadline and idle < 6:
            batch = await consumer.poll(max_records=2000, timeout=0.5)
            idle = 0 if batch else idle + 1
            for message in batch:
                event = parse_event(message.value)
                if event.type == "declaration.submitted":
                    declaration = str(event.data.declaration_id)
                    events.setdefault(declaration, set()).add(str(event.id))
                    messages[declaration] += 1
            if ids <= set(events) and not batch:
                break
    finally:
        await consumer.stop()
        await bus.stop()
    return Counter({d: len(e) for d, e in events.items()}), messages


@dataclass
class Outcome:
    rows: list[dict]
    ledger: Ledger
    findings: Findings
    bus_events: Counter
    bus_messages: Counter
    phase: FaultPhase | None = None


async def scenario(work: Path | None = None, log=print) -> Outcome:  # noqa: ANN001
    timing = Timing.of(False)
    timing.baseline = 5.0
    classpath = check_ha_engines()
    own_work = work is None
    work = work or Path(tempfile.mkdtemp(prefix="khaibao-ha-postgres-"))
    system = HASystem(work, timing, classpath)
    ledger = Ledger()
    answers = Answers()
    load: Load | None = None
    t0 = time.monotonic()

    def say(text: str) -> None:
        log(f"[{time.monotonic() - t0:6.1f} s] {text}")

    try:
        await system.start()
        say(f"system up: PostgreSQL pair {system.pg.ports}, primary {system.pg.primary()}, "
            f"Kafka {system.kafka.bootstrap}")
        load = Load(system, ledger)
        answers.install(load.client)
        load.start()
        ledger.phase = "baseline"
        told = Counter(ledger.declaration_answers)
        started = time.monotonic()
        await asyncio.sleep(timing.baseline)
        baseline = FaultPhase("none (load only)", "baseline", time.monotonic() - started, started=started,
                              ended=time.monotonic(), told=Counter(ledger.declaration_answers) - told)
        say(f"fault: {NAME}")
        phase = await primary_sigkill(system, ledger, timing.settle)
        say(phase.note)
        load.check()
        if system.exited():
            raise RuntimeError(f"{system.exited()} exited on their own during the failover")
        ledger.phase = "after"
        await load.stop_load()
        findings, waited = await wait_for_quiescence(system, ledger, timing.quiescence, log=say)
        await load.stop_officials()
        load = None
        events, messages = await bus_copies(system, set(ledger.declarations))
        say(f"quiescent after {waited:.1f} s; {findings.reporting_source}")
        rows = [fault_row(baseline, ledger, findings, answers), fault_row(phase, ledger, findings, answers)]
        for row, key in zip(rows, ("baseline", KEY), strict=True):
            ids = [d for d, p in ledger.declarations.items() if p == key]
            missing = sum(events[d] == 0 for d in ids)
            twice = sum(events[d] > 1 for d in ids)
            again = sum(max(0, messages[d] - events[d]) for d in ids)
            row["bus_missing"], row["bus_twice"], row["bus_redelivered"] = missing, twice, again
            row["notes"] += (f"; on the bus {len(ids) - missing}/{len(ids)} once"
                             + (f", {twice} twice" if twice else "")
                             + (f" ({again} redelivered by the relay, skipped by id)" if again else ""))
        return Outcome(rows, ledger, findings, events, messages, phase)
    except BaseException:
        kept = Path(__file__).resolve().parents[1] / "test-results" / "ha-postgres"
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True, exist_ok=True)
        if (work / "logs").exists():
            shutil.copytree(work / "logs", kept, dirs_exist_ok=True)
        for name in ("monitor", "a", "b"):
            if system.pg.log_file(name).exists():
                shutil.copy(system.pg.log_file(name), kept / f"pg-{name}.log")
        say("failed; logs copied to test-results/ha-postgres/")
        raise
    finally:
        if load is not None:
            load.load_stopped.set()
            await load.stop_officials()
        await system.close()
        if own_work and not os.environ.get("KHAIBAO_KEEP_FAULT_DIR"):
            shutil.rmtree(work, ignore_errors=True)


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ha_postgres", description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    outcome = asyncio.run(scenario(log=lambda text: print(text, file=sys.stderr, flush=True)))
    print(f"\nPostgreSQL primary SIGKILLed under load ({os.cpu_count()} cores shared with other work)\n")
    print(table(outcome.rows))
    return 0 if all(r["lost"] == 0 and r["duplicates"] == 0 and r["bus_missing"] == 0 and r["bus_twice"] == 0
                    for r in outcome.rows) else 1


__all__ = ["Answers", "FaultPhase", "HASystem", "fault_row", "markdown", "primary_sigkill", "scenario", "table"]

if __name__ == "__main__":
    sys.exit(main())
