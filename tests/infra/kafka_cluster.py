"""A throwaway three-node Apache Kafka cluster: three combined broker+controller KRaft nodes.

The same jars as ``kafka_local`` (``deploy/kafka/pom.xml``), one cluster id, a controller
quorum of three (static voters), every node's config, logs and data under one directory
(``DATA/node-1`` ... ``node-3``). Topics default to what production's HA profile uses
(docker-compose.ha.yml): replication factor 3, ``min.insync.replicas=2``, unclean leader
election off; the internal topics (consumer offsets, transactions) likewise.

    python -m tests.infra.kafka_cluster start --classpath deploy/kafka/target/libs --data DATA
    python -m tests.infra.kafka_cluster status --data DATA
    python -m tests.infra.kafka_cluster stop|kill --data DATA

``start`` prints the bootstrap list (``127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3``).

In Python::

    cluster = KafkaCluster(classpath_dir, data_dir)
    cluster.start()                          # the three nodes, until each serves and sees the others
    cluster.bootstrap                        # "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
    leader = cluster.partition_leader("khaibao.declaration", 0)
    cluster.node(leader).kill()              # SIGKILL; .freeze() / .thaw() (SIGSTOP / SIGCONT)
    cluster.node(leader).restart(); cluster.wait_full_isr()
    cluster.active_controller()              # node id of the KRaft quorum's leader

Standard library only, like ``kafka_local``: the cluster's own wire questions (Metadata,
DescribeQuorum) are in ``kafka_probe``.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from . import process
from .kafka_config import SERVER_PROPERTIES
from .kafka_local import KafkaStartError, LocalKafka, _random_cluster_id
from .kafka_probe import metadata, probe, quorum_leader

__all__ = ["KafkaCluster", "KafkaNode", "KafkaStartError", "main"]

NODES = 3
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
STATE_FILE = "kafka-cluster.json"
# Three JVMs on a two-core machine: a smaller heap each than the single broker's.
CLUSTER_HEAP_OPTS = "-Xms64m -Xmx384m"

# What differs from the single node (kafka_config.SERVER_PROPERTIES): the replication of
# user and internal topics, no unclean election, and a static quorum of three voters.
REPLICATED = {
    "default.replication.factor": str(REPLICATION_FACTOR),
    "min.insync.replicas": str(MIN_INSYNC_REPLICAS),
    "unclean.leader.election.enable": "false",
    "offsets.topic.replication.factor": str(REPLICATION_FACTOR),
    "transaction.state.log.replication.factor": str(REPLICATION_FACTOR),
    "transaction.state.log.min.isr": str(MIN_INSYNC_REPLICAS),
    "share.coordinator.state.topic.replication.factor": str(REPLICATION_FACTOR),
    "share.coordinator.state.topic.min.isr": str(MIN_INSYNC_REPLICAS),
    # A follower that stops fetching leaves the ISR after this long (Kafka's default 30 s;
    # a fenced broker leaves it at once, see broker.session.timeout.ms in kafka_config).
    "replica.lag.time.max.ms": "10000",
    # A node back from a crash takes its partitions' leadership back soon after catching up.
    "leader.imbalance.check.interval.seconds": "30",
}


def node_properties(node_id: int, port: int, controller_port: int, log_dirs: Path, voters: str) -> str:
    """server.properties of one node of the cluster."""
    lines = []
    for line in SERVER_PROPERTIES.format(port=port, controller_port=controller_port, log_dirs=log_dirs).splitlines():
        key = line.split("=", 1)[0].strip()
        if key in REPLICATED or key in ("node.id", "controller.quorum.bootstrap.servers"):
            continue
        lines.append(line.replace("a single-node KRaft broker and controller",
                                  f"node {node_id} of a three-node KRaft cluster"))
    lines += [f"node.id={node_id}", f"controller.quorum.voters={voters}"]
    lines += [f"{k}={v}" for k, v in REPLICATED.items()]
    return "\n".join(lines) + "\n"


class KafkaNode(LocalKafka):
    """One combined broker+controller of a ``KafkaCluster`` (started, killed, restarted alone)."""

    default_heap_opts = CLUSTER_HEAP_OPTS

    def __init__(self, cluster: "KafkaCluster", node_id: int, port: int, controller_port: int) -> None:
        super().__init__(cluster.classpath_dir, cluster.data_dir / f"node-{node_id}", port=port,
                         controller_port=controller_port, java=cluster.java)
        self.cluster = cluster
        self.node_id = node_id
        self.frozen = False

    def _properties(self) -> str:
        return node_properties(self.node_id, self.port, self.controller_port, self.storage_dir, self.cluster.voters)

    def _format_options(self) -> list[str]:
        # The voters are in the config (controller.quorum.voters): no --standalone.
        return ["--cluster-id", self.cluster.cluster_id]

    def start(self, timeout: float = 90) -> "KafkaNode":
        self.frozen = False
        super().start(timeout)
        return self

    def freeze(self) -> None:
        """SIGSTOP: the JVM stops answering but keeps its connections open (a hung machine)."""
        if self._signal(signal.SIGSTOP):
            self.frozen = True

    def thaw(self) -> None:
        """SIGCONT after ``freeze()``."""
        if self._signal(signal.SIGCONT):
            self.frozen = False

    def kill(self) -> None:
        if self.frozen:
            self.thaw()
        super().kill()

    def stop(self, timeout: float = 20) -> None:
        if self.frozen:
            self.thaw()
        super().stop(timeout)

    def __repr__(self) -> str:
        return f"KafkaNode({self.node_id}, port={self.port}, running={self.is_running()})"


class KafkaCluster:
    """Three KRaft nodes (broker and controller each) on free loopback ports under ``data_dir``."""

    def __init__(self, classpath_dir: Path | str, data_dir: Path | str, java: str | None = None) -> None:
        self.classpath_dir = Path(classpath_dir).resolve()
        self.data_dir = Path(data_dir).resolve()
        self.java = java or os.environ.get("JAVA") or "java"
        state = process.read_state(self.data_dir, STATE_FILE)
        self.cluster_id: str = state.get("cluster_id") or _random_cluster_id()
        ports = state.get("ports") or []
        if not ports:
            base = process.free_port_block(2 * NODES)
            ports = [[base + 2 * i, base + 2 * i + 1] for i in range(NODES)]
        self.nodes = [KafkaNode(self, i + 1, port, controller) for i, (port, controller) in enumerate(ports)]
        self.startup_seconds: float | None = None

    @property
    def voters(self) -> str:
        return ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)

    @property
    def bootstrap(self) -> str:
        """Every node's address, as the services get it (KHAIBAO_BUS_URL=kafka://<this>)."""
        return ",".join(n.bootstrap for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def _write_state(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        process.write_state(self.data_dir, STATE_FILE, {
            "cluster_id": self.cluster_id, "classpath": str(self.classpath_dir),
            "ports": [[n.port, n.controller_port] for n in self.nodes], "bootstrap": self.bootstrap})

    # -- start and stop ----------------------------------------------------------------------
    def start(self, timeout: float = 180) -> "KafkaCluster":
        """Start the three nodes together (a quorum needs two of them to elect a leader) and
        wait until each serves and knows all three brokers."""
        self._write_state()
        started = time.monotonic()
        errors: list[BaseException] = []

        def run(node: KafkaNode) -> None:
            try:
                if not node.is_running():
                    node.start(timeout)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.kill()
            raise errors[0]
        self.wait_brokers(NODES, timeout=max(10.0, timeout - (time.monotonic() - started)))
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def detach(self) -> None:
        for node in self.nodes:
            node.detach()

    def restart(self, timeout: float = 180) -> "KafkaCluster":
        self.stop()
        return self.start(timeout)

    def is_running(self) -> bool:
        return any(n.is_running() for n in self.nodes)

    # -- what the cluster says ----------------------------------------------------------------
    def live_nodes(self) -> list[KafkaNode]:
        return [n for n in self.nodes if n.is_running() and not n.frozen]

    def metadata(self, topics: list[str] | None = None) -> dict:
        """Metadata from the first live node that answers."""
        last: Exception | None = None
        for node in self.live_nodes():
            try:
                return metadata("127.0.0.1", node.port, topics)
            except OSError as exc:
                last = exc
        raise OSError(f"no node of the cluster answers Metadata: {last!r}")

    def partition_leader(self, topic: str, partition: int = 0) -> int:
        """The node id leading ``topic``'s ``partition`` (-1: none)."""
        return self.metadata([topic])["topics"][topic][partition]["leader"]

    def active_controller(self) -> int:
        """The node id of the active controller (the KRaft quorum's leader)."""
        last: Exception | None = None
        for node in self.live_nodes():
            try:
                return quorum_leader("127.0.0.1", node.port)
            except OSError as exc:
                last = exc
        raise OSError(f"no node of the cluster answers DescribeQuorum: {last!r}")

    def under_replicated(self, topics: list[str] | None = None) -> dict[str, list[int]]:
        """Partitions whose ISR is smaller than their replica set (or that have no leader)."""
        found = {}
        for topic, partitions in self.metadata(topics)["topics"].items():
            short = [p for p, m in partitions.items() if m["leader"] < 0 or len(m["isr"]) < len(m["replicas"])]
            if short:
                found[topic] = short
        return found

    def wait_brokers(self, count: int = NODES, timeout: float = 120) -> None:
        """Until a node says ``count`` brokers are registered (and unfenced)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for node in self.live_nodes():
                try:
                    seen = probe("127.0.0.1", node.port)
                except OSError:
                    continue
                if seen >= count:
                    return
            time.sleep(0.5)
        raise KafkaStartError(f"the cluster shows {seen} of {count} brokers after {timeout:.0f} s\n"
                              + "\n".join(n.log_tail(15) for n in self.nodes))

    def wait_full_isr(self, topics: list[str] | None = None, timeout: float = 180) -> float:
        """Until every broker is back and every partition's ISR is its whole replica set;
        the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        self.wait_brokers(NODES, timeout)
        short: dict | str = {}
        while time.monotonic() < deadline:
            try:
                short = self.under_replicated(topics)
            except OSError as exc:
                short = repr(exc)
            if not short:
                return time.monotonic() - started
            time.sleep(0.5)
        raise KafkaStartError(f"partitions still under-replicated after {timeout:.0f} s: {short}")

    def __repr__(self) -> str:
        return f"KafkaCluster({self.bootstrap!r}, data_dir={str(self.data_dir)!r})"


def main(argv: list[str] | None = None) -> int:
    import argparse

    top = argparse.ArgumentParser(prog="python -m tests.infra.kafka_cluster", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start three detached nodes and print the bootstrap list")
    start.add_argument("--classpath", type=Path, required=True, help="directory with the Kafka jars")
    start.add_argument("--data", type=Path, required=True, help="directory for the three nodes")
    start.add_argument("--timeout", type=float, default=180)
    for name in ("stop", "kill", "status"):
        sub.add_parser(name).add_argument("--data", type=Path, required=True)
    args = top.parse_args(argv)

    if args.command == "start":
        cluster = KafkaCluster(args.classpath, args.data)
        try:
            cluster.start(args.timeout)
        except KafkaStartError as exc:
            print(exc, file=sys.stderr)
            return 1
        cluster.detach()
        print(f"Kafka cluster started in {cluster.startup_seconds:.1f} s (data {cluster.data_dir})", file=sys.stderr)
        print(cluster.bootstrap, flush=True)
        return 0
    state = process.read_state(args.data.resolve(), STATE_FILE)
    if not state:
        print(f"no cluster in {args.data}", file=sys.stderr)
        return 3 if args.command == "status" else 0
    cluster = KafkaCluster(state.get("classpath", "."), args.data)
    if args.command == "status":
        running = [n.node_id for n in cluster.nodes if n.is_running()]
        print(f"{'running' if running else 'stopped'} nodes {running} {cluster.bootstrap}")
        return 0 if running else 3
    cluster.kill() if args.command == "kill" else cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
