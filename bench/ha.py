"""High availability under load (issue 19): the five services on three Kafka brokers and a
PostgreSQL primary/standby pair while one node dies, then another, then one hangs.

    python -m bench.ha              # the four faults below on both HA engines, 4-5 minutes (more when busy)
    python -m bench.ha --short      # three brokers only (a private single PostgreSQL), one leader
                                    # kill and one freeze, small load (the CI test's form)

The system is tests/reliability/harness.py's (the five services as processes, a real SMTP
server) with a three-node KRaft cluster (tests/infra/kafka_cluster.py) instead of the single
broker: topics with replication factor 3 and min.insync.replicas=2, unclean leader election
off, the producer idempotent with acks=all; and, in the full form, a pg_auto_failover pair
(tests/infra/postgres_ha.py: monitor, primary, synchronous standby) instead of the single
PostgreSQL, the services on multi-host URLs with ``target_session_attrs=read-write``
(bench/ha_postgres.py's HASystem). Visitors declare (one in twenty red: a close contact),
units register, officials forward and issue, as in bench.reliability_faults
(tests/reliability/faults_load.py). Then, one at a time, each under that load:

1. SIGKILL of the leader of partition 0 of ``khaibao.declaration``;
2. SIGKILL of the active controller (the KRaft quorum's leader);
3. a broker (the partition leader again) frozen for 20 s: SIGSTOP, then SIGCONT;
4. SIGKILL of the PostgreSQL primary node (its keeper and its PostgreSQL): the monitor
   promotes the standby, the services reconnect to it by themselves (full form only).

A killed node stays down ``node_down`` seconds, is started again (the old PostgreSQL primary
rejoins as standby), and the next fault waits until every partition's ISR is whole again
(the pair primary and secondary again). Afterwards every declaration a visitor got a
2xx for must be stored once, on the bus once, in reporting once, and every red one's alert
raised once (counted in exactly one alert); every registration forwarded, issued, mailed.
"On the bus once" counts distinct events (event ids): after a database failover the outbox
relay may publish an event again whose "sent" mark died with the old primary; the consumers
skip it by its id, and the table shows such messages as "redelivered", apart from duplicates.

One row per fault: declarations accepted, refused (by status) and the p99 of the answers
while the fault lasted; the time to recover full service (from the fault until declarations
are answered 2xx again and reach reporting as fast as before it: the accepted-to-reporting
delay back under three times the baseline's median, at least 2 s); then lost and duplicates.

Adding a fault: a fault is an
``async def fault(run: Rehearsal) -> Window`` that finds its target on ``run.system``,
and returns ``await run.window(name, key, inject, heal)``: ``inject()`` breaks something and
returns a note, ``heal()`` brings it back and returns a note (``window`` runs both under
load, records the answers and waits ``settle``). Append it to ``BOTH_FAULTS`` (or pass
``faults=[...]`` to ``rehearse``); its row is built like the others'. A fault needing
another PostgreSQL gives ``rehearse`` a ``system`` factory of its own (``HaSystem`` keeps
``pg`` and ``database_urls`` as FaultSystem does; ``HaPgSystem`` is the one with the pair).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.ha_postgres import KEY as PG_KEY
from bench.ha_postgres import NAME as PG_NAME
from bench.ha_postgres import HASystem, bus_copies, check_ha_engines
from tests.infra.kafka_cluster import MIN_INSYNC_REPLICAS, REPLICATION_FACTOR, KafkaCluster
from tests.infra.postgres_ha import PostgresHA, PostgresHAError
from tests.reliability.faults_load import Ledger, Load, declaration_body
from tests.reliability.faults_verify import Findings, wait_for_quiescence
from tests.reliability.harness import FaultSystem, Timing, check_engines

TOPIC = "khaibao.declaration"
DECLARE_PATH = "/api/declarations"
# How long a client may take to find the new leader after a broker is lost: the producer's
# and consumers' request timeout (15 s, libs/common/bus/kafka.py), the controller fencing
# the broker (broker.session.timeout.ms: 5 s in the test cluster, 9 s in production), one
# outbox relay backoff (at most 5 s). No declaration may be refused after it.
RETRY_WINDOW = 30.0
COLUMNS = ("fault", "duration", "accepted", "refused", "p99", "recovered", "lost", "duplicates", "redelivered",
           "notes")


# --- the system on three brokers ------------------------------------------------------------

@dataclass
class HaSystem(FaultSystem):
    """FaultSystem with a three-node Kafka cluster (``self.kafka`` is the cluster)."""

    cluster: KafkaCluster = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cluster = KafkaCluster(self.classpath, self.work / "kafka")
        self.kafka = self.cluster  # start(), bootstrap and kill() as FaultSystem uses them
        self.extra_env = {"KHAIBAO_KAFKA_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
                          "KHAIBAO_KAFKA_MIN_INSYNC_REPLICAS": str(MIN_INSYNC_REPLICAS),
                          "KHAIBAO_KAFKA_PARTITIONS": "3", **self.extra_env}


@dataclass
class HaPgSystem(HaSystem, HASystem):
    """HaSystem on bench/ha_postgres.py's pg_auto_failover pair: ``self.pg`` is a PostgresHA,
    ``database_urls`` and ``pg_url`` are its multi-host URLs (read-write node wherever it is)."""


@dataclass
class HaTiming(Timing):
    node_down: float = 40.0    # a killed node is started again after this long (> RETRY_WINDOW)
    freeze: float = 20.0       # SIGSTOP ... SIGCONT
    red_every: int = 20        # one declaration in this many is red
    warmup: float = 10.0       # load before the baseline, not in the table

    @classmethod
    def full(cls) -> "HaTiming":
        return cls(rate=30.0, registration_interval=0.5, baseline=10.0, settle=5.0, node_down=40.0, quiescence=90.0,
                   give_up=120.0)

    @classmethod
    def short(cls) -> "HaTiming":
        return cls(rate=10.0, registration_interval=1.0, baseline=4.0, settle=8.0, node_down=30.0, freeze=15.0,
                   warmup=3.0, quiescence=60.0, give_up=90.0)


def ha_body(every: int) -> Callable[[str, int], dict]:
    """declaration_body, with a close contact (red) in one declaration of ``every``."""
    def body(venue_code: str, n: int) -> dict:
        declared = declaration_body(venue_code, n)
        if n % every == 0:
            declared["people"][0]["exposures"] = ["close_contact"]
        return declared
    return body


# --- what the visitors were answered -----------------------------------------------------------

@dataclass
class Answer:
    at: float          # wall clock, when the request was sent
    phase: str
    status: int | str  # HTTP status, or the exception's name
    seconds: float


class TimedClient:
    """The load's httpx client, recording every declaration answer with its phase and time."""

    def __init__(self, client, ledger: Ledger, answers: list[Answer]) -> None:  # noqa: ANN001 - httpx.AsyncClient
        self.client, self.ledger, self.answers = client, ledger, answers

    async def post(self, url: str, **kwargs):  # noqa: ANN003, ANN201 - as httpx
        if not url.endswith(DECLARE_PATH):
            return await self.client.post(url, **kwargs)
        phase, at, started = self.ledger.phase, time.time(), time.monotonic()
        try:
            response = await self.client.post(url, **kwargs)
        except Exception as exc:
            self.answers.append(Answer(at, phase, type(exc).__name__, time.monotonic() - started))
            raise
        self.answers.append(Answer(at, phase, response.status_code, time.monotonic() - started))
        return response

    def __getattr__(self, name: str):  # noqa: ANN204 - request(), aclose() ...
        return getattr(self.client, name)


# --- the rehearsal --------------------------------------------------------------------------------

@dataclass
class Window:
    name: str
    key: str
    started: float     # wall clock: the fault injected
    healing: float     # the node started again (or SIGCONT)
    ended: float       # healed (full ISR) and settled
    notes: list[str] = field(default_factory=list)


@dataclass
class Rehearsal:
    system: HaSystem
    timing: HaTiming
    ledger: Ledger
    load: Load
    answers: list[Answer]
    say: Callable[[str], None]

    @property
    def cluster(self) -> KafkaCluster:
        return self.system.cluster

    async def window(self, name: str, key: str, inject: Callable[[], Awaitable[str]],
                     heal: Callable[[], Awaitable[str]]) -> Window:
        """Break, heal, settle, under load; the answers of that time carry ``key``."""
        self.ledger.phase = key
        self.say(f"fault: {name}")
        started = time.time()
        notes = [await inject()]
        healing = time.time()
        notes.append(await heal())
        await asyncio.sleep(self.timing.settle)
        self.load.check()
        exited = self.system.exited()
        if exited:
            raise RuntimeError(f"{', '.join(exited)} exited on its own during '{name}':\n"
                               + "\n".join(self.system.services[s].log_tail() for s in exited))
        return Window(name, key, started, healing, time.time(), [n for n in notes if n])

    async def kill_node(self, node_id: int) -> str:
        node = self.cluster.node(node_id)
        await asyncio.to_thread(node.kill)
        await asyncio.sleep(self.timing.node_down)
        return f"node {node_id} down {self.timing.node_down:.0f} s"

    async def restart_node(self, node_id: int) -> str:
        started = time.monotonic()
        await asyncio.to_thread(self.cluster.node(node_id).start, 180)
        back = time.monotonic() - started
        isr = await asyncio.to_thread(self.cluster.wait_full_isr, None, 240)
        return f"node back in {back:.1f} s, full ISR {isr:.1f} s later"

    async def leader_of(self, topic: str = TOPIC, partition: int = 0) -> int:
        return await asyncio.to_thread(self.cluster.partition_leader, topic, partition)


Fault = Callable[[Rehearsal], Awaitable[Window]]


async def kill_partition_leader(run: Rehearsal, while_down: Callable[[], Awaitable[None]] | None = None) -> Window:
    """``while_down``: awaited once the leader is dead (the test reads the services' gauges)."""
    leader = await run.leader_of()

    async def inject() -> str:
        started = time.monotonic()
        await asyncio.to_thread(run.cluster.node(leader).kill)
        if while_down is not None:
            await while_down()
        await asyncio.sleep(max(0.0, run.timing.node_down - (time.monotonic() - started)))
        return f"node {leader} down {run.timing.node_down:.0f} s; new leader node {await run.leader_of()}"

    return await run.window(f"SIGKILL leader of {TOPIC}[0]", "kill-leader", inject,
                            lambda: run.restart_node(leader))


async def kill_active_controller(run: Rehearsal) -> Window:
    controller = await asyncio.to_thread(run.cluster.active_controller)

    async def inject() -> str:
        note = await run.kill_node(controller)
        return f"{note}; new controller node {await asyncio.to_thread(run.cluster.active_controller)}"

    return await run.window("SIGKILL active controller", "kill-controller", inject,
                            lambda: run.restart_node(controller))


async def freeze_broker(run: Rehearsal) -> Window:
    leader = await run.leader_of()
    node = run.cluster.node(leader)
    seconds = run.timing.freeze

    async def inject() -> str:
        node.freeze()
        await asyncio.sleep(seconds)
        moved = await run.leader_of()
        node.thaw()
        return f"node {leader} (leader of {TOPIC}[0]) frozen {seconds:.0f} s; leader meanwhile node {moved}"

    async def heal() -> str:
        isr = await asyncio.to_thread(run.cluster.wait_full_isr, None, 240)
        return f"full ISR {isr:.1f} s after SIGCONT"

    return await run.window(f"broker frozen {seconds:.0f} s (SIGSTOP, SIGCONT)", "freeze", inject, heal)


async def kill_postgres_primary(run: Rehearsal) -> Window:
    """SIGKILL of the PostgreSQL primary node (HaPgSystem): down ``node_down`` seconds, the
    standby promoted meanwhile; then the old primary started again, back as standby."""
    pg = run.system.pg
    if not isinstance(pg, PostgresHA):
        raise TypeError("kill_postgres_primary needs the PostgreSQL pair (HaPgSystem)")
    old: list[str] = []

    async def inject() -> str:
        started = time.monotonic()
        old.append(await asyncio.to_thread(pg.kill_primary))
        await asyncio.to_thread(pg.wait_failover, old[0], 120)
        failover = time.monotonic() - started  # from the kill to a writable new primary
        await asyncio.sleep(max(0.0, run.timing.node_down - (time.monotonic() - started)))
        return (f"node {old[0]} (primary) down {run.timing.node_down:.0f} s; standby {pg.primary()} writable "
                f"{failover:.1f} s after the kill")

    async def heal() -> str:
        # The killed node rejoins: pg_rewind first, and when that fails (here: its crash
        # recovery in single-user mode refuses the standby.signal pg_autoctl already wrote)
        # a pg_basebackup, which waits for a checkpoint of the new primary; a spread one
        # under load takes minutes (checkpoint_timeout x completion_target). An immediate
        # CHECKPOINT asked meanwhile finishes it, as an operator would.
        rejoining = asyncio.ensure_future(asyncio.to_thread(pg.restart_node, old[0], 180))
        primary, checkpoints = pg.primary(), 0
        while not rejoining.done():
            await asyncio.wait([rejoining], timeout=5.0)
            if not rejoining.done() and primary is not None:
                try:
                    await asyncio.to_thread(pg._psql, pg.ports[primary], "CHECKPOINT")
                    checkpoints += 1
                except (PostgresHAError, subprocess.TimeoutExpired):
                    pass
        rejoin = rejoining.result()
        return (f"{old[0]} back as standby (primary and secondary again) {rejoin:.1f} s after its restart"
                + (f" ({checkpoints} CHECKPOINT asked on {primary} meanwhile)" if checkpoints else ""))

    return await run.window(PG_NAME, PG_KEY, inject, heal)


FAULTS: list[Fault] = [kill_partition_leader, kill_active_controller, freeze_broker]
# The full rehearsal (issue 19 item 3): the Kafka faults, then the database's.
BOTH_FAULTS: list[Fault] = [*FAULTS, kill_postgres_primary]
SHORT_FAULTS: list[Fault] = [kill_partition_leader, freeze_broker]


# --- after the faults: where is everything? ------------------------------------------------------

@dataclass
class Checked:
    findings: Findings
    on_bus: Counter                       # declaration id -> distinct declaration.submitted events on the bus
    on_bus_messages: Counter              # declaration id -> messages (an event redelivered counts again)
    reds: set[str]                        # accepted red declarations
    alerted: Counter                      # red declaration id -> rows counting it in an alert
    delays: dict[str, tuple[float, float]]  # declaration id -> (submitted, accepted-to-reporting seconds)


async def _rows(url: str, query: str, *args: object) -> list:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def check(run: Rehearsal) -> Checked:
    system, ledger = run.system, run.ledger
    findings, waited = await wait_for_quiescence(system, ledger, run.timing.quiescence, log=run.say)
    run.say(f"quiescent after {waited:.1f} s; {findings.reporting_source}")
    ids = list(ledger.declarations)
    reds = {r["id"] for r in await _rows(system.pg_url("declaration"),
                                           "SELECT id::text AS id FROM declarations WHERE id::text = ANY($1::text[]) "
                                           "AND result = 'red'", ids)}
    alerted: Counter = Counter()
    deadline = time.monotonic() + run.timing.quiescence
    while True:
        rows = await _rows(system.pg_url("notification"), """
            SELECT d.declaration_id::text AS id, count(*) AS n FROM alert_declarations d
            JOIN alerts a ON a.id = d.alert_id WHERE d.declaration_id::text = ANY($1::text[]) GROUP BY 1""",
                           sorted(reds))
        alerted = Counter({r["id"]: r["n"] for r in rows})
        if set(alerted) >= reds or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    on_bus, messages = await bus_copies(system, set(ids), timeout=120)
    delays = {r["id"]: (r["submitted_at"].timestamp(), (r["received_at"] - r["submitted_at"]).total_seconds())
              for r in await _rows(system.pg_url("reporting"), """
                SELECT declaration_id::text AS id, submitted_at, received_at FROM visits
                WHERE declaration_id::text = ANY($1::text[])""", ids)}
    return Checked(findings, on_bus, messages, reds, alerted, delays)


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def recovery(window: Window, answers: list[Answer], delays: dict[str, tuple[float, float]],
             threshold: float) -> float | None:
    """Seconds from the fault until full service: no refused answer after that moment, and
    every declaration submitted after it reached reporting within ``threshold`` seconds.

    Looked for while the fault lasts (the node dead or frozen): the cluster must recover
    without it. If service is still short when the node comes back, the whole window
    counts (the time until service was full again); None: not even by its end."""
    bad = sorted([submitted for submitted, delay in delays.values() if delay > threshold]
                 + [a.at for a in answers if a.phase == window.key and a.status not in (200, 201)])
    for end in (window.healing, window.ended):
        last = max((t for t in bad if window.started <= t <= end), default=None)
        if last is None:
            return 0.0
        if last < end - 1.0:
            return last - window.started
    return None


def row(window: Window, run: Rehearsal, checked: Checked, threshold: float) -> dict:
    ledger, found = run.ledger, checked.findings
    declared = [d for d, p in ledger.declarations.items() if p == window.key]
    registered = [r for r, p in ledger.registrations.items() if p == window.key]
    answers = [a for a in run.answers if a.phase == window.key]
    refused = Counter(a.status for a in answers if a.status not in (200, 201))
    reds = [d for d in declared if d in checked.reds]
    lost = {
        "not stored": sum(d not in found.declarations_stored for d in declared),
        "not on the bus": sum(checked.on_bus[d] == 0 for d in declared),
        "not in reporting": sum(d not in found.declarations_counted for d in declared),
        "red without alert": sum(checked.alerted[d] == 0 for d in reds),
        "registrations not through": sum(not found.registration_ok(r) for r in registered),
    }
    duplicates = {
        "stored or in reporting twice": sum(found.extra[d] for d in declared),
        "on the bus twice": sum(max(0, checked.on_bus[d] - 1) for d in declared),
        "red counted in two alerts": sum(max(0, checked.alerted[d] - 1) for d in reds),
        "registration twice": sum(found.extra[r] for r in registered),
    }
    redelivered = sum(max(0, checked.on_bus_messages[d] - checked.on_bus[d]) for d in declared)
    latency = p99([a.seconds for a in answers])
    recovered = recovery(window, run.answers, checked.delays, threshold)
    # The refused window: from the fault to the last refused answer (sent after the fault).
    refusals = [a for a in answers if a.status not in (200, 201) and a.at >= window.started]
    refused_window = max((a.at + a.seconds for a in refusals), default=window.started) - window.started

    def slowest(start: float, end: float) -> float:
        return max((d for submitted, d in checked.delays.values() if start <= submitted <= end), default=0.0)

    notes = [*window.notes, f"{len(reds)} red, {len(registered)} registrations",
             f"accepted-to-reporting max {slowest(window.started, window.healing):.1f} s during the fault, "
             f"{slowest(window.healing, window.ended):.1f} s once the node was back"]
    if refusals:
        first = min(a.at for a in refusals) - window.started
        notes.insert(len(window.notes), f"refused from {first:.1f} s to {refused_window:.1f} s after the fault")
    notes += [f"{k} {v}" for k, v in {**lost, **duplicates}.items() if v]
    return {"fault": window.name, "duration": f"{window.ended - window.started:.0f} s", "accepted": len(declared),
            "refused": ", ".join(f"{s}: {n}" for s, n in refused.most_common()) or "0",
            "p99": f"{latency * 1000:.0f} ms" if latency is not None else "-",
            "recovered": f"{recovered:.1f} s" if recovered is not None else "not within the window",
            "lost": sum(lost.values()), "duplicates": sum(duplicates.values()), "redelivered": redelivered,
            "notes": "; ".join(notes), "recovered_seconds": recovered, "refused_window_seconds": refused_window,
            "refused_after_window": sum(a.status not in (200, 201) and a.at > window.started + RETRY_WINDOW
                                        for a in answers),
            "red": len(reds), "registrations": len(registered)}


@dataclass
class Outcome:
    rows: list[dict]
    windows: list[Window]
    checked: Checked
    ledger: Ledger
    seconds: float


async def rehearse(short: bool = False, faults: list[Fault] | None = None, work: Path | None = None,
                   log=print, system: Callable[[Path, HaTiming, Path], HaSystem] | None = None) -> Outcome:  # noqa: ANN001
    """The short form: three brokers and a single PostgreSQL (the CI test). The full form:
    both HA engines (HaPgSystem) and the four faults, unless ``system`` or ``faults`` say
    otherwise."""
    timing = HaTiming.short() if short else HaTiming.full()
    faults = faults if faults is not None else (SHORT_FAULTS if short else BOTH_FAULTS)
    system = system or (HaSystem if short else HaPgSystem)
    needs_pair = isinstance(system, type) and issubclass(system, HASystem)
    classpath = check_ha_engines() if needs_pair else check_engines()
    own_work = work is None
    work = work or Path(tempfile.mkdtemp(prefix="khaibao-ha-"))
    ha = system(work, timing, classpath)
    ledger, answers = Ledger(), []
    load: Load | None = None
    t0 = time.monotonic()

    def say(text: str) -> None:
        log(f"[{time.monotonic() - t0:6.1f} s] {text}")

    try:
        await ha.start()
        database = (f"PostgreSQL pair {ha.pg.ports}, primary {ha.pg.primary()}" if isinstance(ha.pg, PostgresHA)
                    else f"PostgreSQL port {ha.pg.port}")
        say(f"system up: Kafka {ha.cluster.bootstrap} (started in {ha.cluster.startup_seconds:.1f} s), "
            f"{database}, venues {ha.venue_codes}")
        await asyncio.to_thread(ha.cluster.wait_full_isr, None, 120)
        load = Load(ha, ledger, body=ha_body(timing.red_every))
        load.client = TimedClient(load.client, ledger, answers)
        run = Rehearsal(ha, timing, ledger, load, answers, say)
        load.start()

        async def baseline() -> str:
            await asyncio.sleep(timing.baseline)
            return ""

        async def nothing() -> str:
            return ""

        # Warm-up, not in the table: the consumers' first joins and the first topics' leaders.
        ledger.phase = "warm-up"
        await asyncio.sleep(timing.warmup)
        windows = [await run.window("none (load only)", "baseline", baseline, nothing)]
        for fault in faults:
            windows.append(await fault(run))
        ledger.phase = "after"
        say("load stops; waiting for everything accepted to be through")
        await load.stop_load()
        checked = await check(run)
        await load.stop_officials()
        load = None
        base = [delay for submitted, delay in checked.delays.values()
                if windows[0].started <= submitted <= windows[0].ended]
        threshold = max(2.0, 3 * (statistics.median(base) if base else 0.0))
        rows = [row(w, run, checked, threshold) for w in windows]
        say(f"recovered = no refusal and accepted-to-reporting under {threshold:.1f} s again "
            f"(baseline median {statistics.median(base) if base else 0:.1f} s)")
        return Outcome(rows, windows, checked, ledger, time.monotonic() - t0)
    except BaseException:
        kept = Path(__file__).resolve().parents[1] / "test-results" / "ha"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(work / "logs", kept / "services", dirs_exist_ok=True)
        for node in ha.cluster.nodes:
            shutil.copy(node.log_file, kept / f"kafka-node-{node.node_id}.log") if node.log_file.exists() else None
        if isinstance(ha.pg, PostgresHA):
            for name in ("monitor", "a", "b"):
                if ha.pg.log_file(name).exists():
                    shutil.copy(ha.pg.log_file(name), kept / f"pg-{name}.log")
        say("failed; service, broker and database logs copied to test-results/ha/")
        raise
    finally:
        if load is not None:
            load.load_stopped.set()
            await load.stop_officials()
        await ha.close()
        if own_work and not os.environ.get("KHAIBAO_KEEP_FAULT_DIR"):
            shutil.rmtree(work, ignore_errors=True)


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ha", description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true",
                        help="three brokers and a single PostgreSQL: one leader kill and one freeze, small load")
    args = parser.parse_args(argv)
    outcome = asyncio.run(rehearse(args.short, log=lambda text: print(text, file=sys.stderr, flush=True)))
    load = os.getloadavg()[0]
    engines = "three Kafka brokers" if args.short else "three Kafka brokers and a PostgreSQL primary/standby pair"
    print(f"\nHigh availability under load, {engines} ({'short' if args.short else 'full'} form; "
          f"{os.cpu_count()} cores, load average {load:.1f} at the end; {outcome.seconds:.0f} s in all)\n")
    print(markdown(outcome.rows))
    return 0 if all(r["lost"] == 0 and r["duplicates"] == 0 for r in outcome.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
