"""Faults under load: kill, stop and restart the real parts while declarations and
registrations flow; then count accepted, stored, duplicates and lost.

    python -m bench.reliability_faults            # short form (about 3 minutes), as in CI
    python -m bench.reliability_faults --long     # Kafka down 60 s, SMTP down 10 minutes

The five services run as separate processes (``khaibao serve``) on a private PostgreSQL
(one database per service) and a private Kafka, with a real SMTP server
(tests/reliability/harness.py). Visitors declare at a steady rate, units register, the
district accepts and forwards, the city issues accounts (tests/reliability/faults_load.py).
One fault after another, each under that load:

1. nothing (the baseline);
2. SIGKILL of each service in turn, started again at once;
3. Kafka stopped (10 s short, 60 s long) and started again;
4. PostgreSQL restarted (pg_ctl stop -m fast, start);
5. the SMTP server down. The issue asks for 10 minutes: the long form does exactly that
   against a 5-minute e-mail retry period; the short form scales both down (12 s down, 6 s
   retry period), so that some credentials go out once SMTP is back and some land in the
   district's Support Channel, as a real 10-minute outage with a shorter period would.

Then the load stops, the officials keep working until everything accepted has been through
(bounded), and every accepted item is looked up in the services' databases and the SMTP
inbox (tests/reliability/faults_verify.py). One table row per fault, for the items
accepted while it lasted. ``run_faults(long)`` returns the rows (bench/reliability.py
prints them with the other figures of the suite).

Needs PostgreSQL server binaries (``/usr/lib/postgresql/*/bin``), Java and the Kafka jars
(``KHAIBAO_KAFKA_CLASSPATH``, default ``deploy/kafka/target/libs``).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from libs.common.settings import SERVICES
from tests.reliability.faults_load import Ledger, Load
from tests.reliability.faults_verify import Findings, wait_for_quiescence
from tests.reliability.harness import FaultSystem, Timing, check_engines

COLUMNS = ("fault", "duration", "accepted", "stored", "duplicates", "lost", "notes")


@dataclass
class Phase:
    name: str
    key: str
    duration: float = 0.0
    note: str = ""


@dataclass
class Outcome:
    rows: list[dict]
    ledger: Ledger
    findings: Findings
    phases: list[Phase] = field(default_factory=list)
    quiescence_seconds: float = 0.0
    work: Path | None = None


def _row(phase: Phase, ledger: Ledger, found: Findings) -> dict:
    """The items accepted while ``phase`` lasted (all of them for the key ``*``)."""
    declarations = [d for d, p in ledger.declarations.items() if phase.key in (p, "*")]
    registrations = [r for r, p in ledger.registrations.items() if phase.key in (p, "*")]
    declared_ok = sum(found.declaration_ok(d) for d in declarations)
    registered_ok = sum(found.registration_ok(r) for r in registrations)
    emailed = sum(r in found.credentials_emailed for r in registrations)
    channel = sum(r in found.credentials_in_channel and r not in found.credentials_emailed for r in registrations)
    duplicates = sum(found.extra[i] for i in [*declarations, *registrations])
    accepted = len(declarations) + len(registrations)
    stored = declared_ok + registered_ok
    notes = [f"declarations {declared_ok}/{len(declarations)}",
             f"registrations {registered_ok}/{len(registrations)} (e-mailed {emailed}, Support Channel {channel})"]
    twice = sum(r in found.emailed_twice for r in registrations)
    if twice:
        notes.append(f"credentials e-mail sent twice {twice}")
    if ledger.server_errors[phase.key]:
        notes.append(f"5xx answers {ledger.server_errors[phase.key]}")
    if phase.note:
        notes.append(phase.note)
    return {"fault": phase.name, "duration": f"{phase.duration:.1f} s", "accepted": accepted, "stored": stored,
            "duplicates": duplicates, "lost": accepted - stored, "notes": "; ".join(notes),
            "declarations": len(declarations), "registrations": len(registrations),
            "server_errors": ledger.server_errors[phase.key], "emailed": emailed, "in_channel": channel}


async def scenario(long: bool = False, work: Path | None = None, log=print) -> Outcome:  # noqa: ANN001
    timing = Timing.of(long)
    classpath = check_engines()
    own_work = work is None
    work = work or Path(tempfile.mkdtemp(prefix="khaibao-faults-"))
    system = FaultSystem(work, timing, classpath)
    ledger = Ledger()
    phases: list[Phase] = []
    load: Load | None = None
    t0 = time.monotonic()

    def say(text: str) -> None:
        log(f"[{time.monotonic() - t0:6.1f} s] {text}")

    async def phase(name: str, key: str, action) -> None:  # noqa: ANN001
        ledger.phase = key
        say(f"fault: {name}")
        started = time.monotonic()
        note = await action()
        current = Phase(name, key, time.monotonic() - started, note or "")
        await asyncio.sleep(timing.settle)
        load.check()
        exited = system.exited()
        if exited:
            raise RuntimeError(f"{', '.join(exited)} exited on its own during '{name}':\n"
                               + "\n".join(system.services[s].log_tail() for s in exited))
        phases.append(current)

    try:
        await system.start()
        say(f"system up: PostgreSQL port {system.pg.port}, Kafka {system.kafka.bootstrap}, "
            f"SMTP port {system.mail.port}, venues {system.venue_codes}")
        load = Load(system, ledger)
        load.start()

        async def baseline() -> str:
            await asyncio.sleep(timing.baseline)
            return ""

        await phase("none (load only)", "baseline", baseline)
        for service in SERVICES:
            async def kill(service: str = service) -> str:
                back = await system.kill_and_restart(service)
                return f"healthy again after {back:.1f} s"
            await phase(f"SIGKILL {service}", f"kill-{service}", kill)

        async def kafka_outage() -> str:
            await system.stop_kafka()
            await asyncio.sleep(timing.kafka_down)
            started = time.monotonic()
            await system.start_kafka()
            return f"stopped {timing.kafka_down:.0f} s, broker start {time.monotonic() - started:.1f} s"

        await phase(f"Kafka stopped {timing.kafka_down:.0f} s", "kafka", kafka_outage)

        async def postgres_restart() -> str:
            return f"pg_ctl restart {await system.restart_postgres():.1f} s"

        await phase("PostgreSQL restarted", "postgres", postgres_restart)

        async def smtp_outage() -> str:
            started = time.monotonic()
            system.mail.stop()
            await asyncio.sleep(timing.smtp_down)
            # Down until credentials have outlived the retry period and gone to the Support
            # Channel (on a slow machine the first ones may take longer to be issued).
            deadline = time.monotonic() + timing.smtp_down * 4
            while not await system.credentials_in_channel() and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
            system.mail.start()
            landed = await system.credentials_in_channel()
            if long:
                return f"e-mail retry period {timing.email_retry_period:.0f} s; {landed} to the Support Channel"
            return (f"10 min scaled to {time.monotonic() - started:.0f} s, e-mail retry period 6 h scaled to "
                    f"{timing.email_retry_period:.0f} s; {landed} credentials to the Support Channel")

        smtp_name = "SMTP down 10 min" if long else "SMTP down 10 min (scaled)"
        await phase(smtp_name, "smtp", smtp_outage)

        ledger.phase = "after"
        say("load stops; waiting for everything accepted to be through")
        await load.stop_load()
        findings, waited = await wait_for_quiescence(system, ledger, timing.quiescence, log=say)
        await load.stop_officials()
        load = None
        say(f"quiescent after {waited:.1f} s; {findings.reporting_source}")
        rows = [_row(p, ledger, findings) for p in phases]
        total = _row(Phase("all faults", "*", sum(p.duration for p in phases)), ledger, findings)
        total["server_errors"] = sum(ledger.server_errors.values())
        loaded = max(sum(p.duration for p in phases), 1e-9)
        answers = ", ".join(f"{k}: {v}" for k, v in ledger.declaration_answers.most_common(5))
        total["notes"] = (f"{total['notes']}; {len(ledger.declarations) / loaded:.0f} declarations/s achieved "
                          f"({timing.rate:.0f}/s offered; answers {answers}); "
                          f"visitors who gave up {ledger.declarations_given_up}; "
                          f"quiescent {waited:.1f} s after the load; {findings.reporting_source}")
        rows.append(total)
        missing = {k: v for k, v in findings.missing(ledger).items() if v}
        if missing:
            say(f"MISSING: {missing}")
        return Outcome(rows, ledger, findings, phases, waited, work)
    except BaseException:
        kept = Path(__file__).resolve().parents[1] / "test-results" / "reliability-faults"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(work / "logs", kept, dirs_exist_ok=True)
        say("failed; service logs copied to test-results/reliability-faults/")
        raise
    finally:
        if load is not None:
            load.load_stopped.set()
            await load.stop_officials()
        await system.close()
        if own_work and not os.environ.get("KHAIBAO_KEEP_FAULT_DIR"):
            shutil.rmtree(work, ignore_errors=True)


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def run_faults(long: bool) -> list[dict]:
    """The table rows (fault, duration, accepted, stored, duplicates, lost, notes, ...)."""
    return asyncio.run(scenario(long, log=lambda text: print(text, file=sys.stderr, flush=True))).rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability_faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--long", action="store_true",
                        default=os.environ.get("KHAIBAO_RELIABILITY_LONG", "") not in ("", "0", "false", "no"),
                        help="Kafka down 60 s and SMTP down 10 minutes (about 20 minutes in all)")
    args = parser.parse_args(argv)
    rows = run_faults(args.long)
    print(f"\nFaults under load ({'long' if args.long else 'short'} form; "
          f"{os.cpu_count()} cores shared with other work, figures are noisy)\n")
    print(markdown(rows))
    return 0 if all(r["lost"] == 0 and r["duplicates"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
