"""Just enough of the Kafka wire protocol to ask a broker "are you serving?" (``kafka_local``).

Standard library only."""
from __future__ import annotations

import socket
import struct


def _kafka_request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    client = b"khaibao-probe"
    header = struct.pack(">hhih", api_key, version, corr, len(client)) + client
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    data = _recv_exact(sock, size)
    if struct.unpack(">i", data[:4])[0] != corr:
        raise OSError("correlation id mismatch")
    return data[4:]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def probe(host: str, port: int, timeout: float = 3.0) -> int:
    """Ask the broker for ApiVersions and Metadata; return how many brokers it knows.

    Raises OSError when it does not answer properly. Metadata v4 (the oldest version
    Kafka 4 still serves, non-flexible) with a null topic list.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        body = _kafka_request(sock, 18, 0, 1, b"")  # ApiVersions v0
        if struct.unpack(">h", body[:2])[0] != 0:
            raise OSError("ApiVersions returned an error")
        body = _kafka_request(sock, 3, 4, 2, struct.pack(">ib", -1, 0))  # Metadata v4
        # throttle_time_ms int32, then the brokers array
        return struct.unpack(">i", body[4:8])[0]


# --- metadata: brokers, partition leaders and ISR (Metadata v4, non-flexible) ------------------

class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str):  # noqa: ANN201 - struct values
        size = struct.calcsize(fmt)
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return values[0] if len(values) == 1 else values

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        text = self.data[self.at:self.at + n].decode()
        self.at += n
        return text

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def compact_string(self) -> str | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        text = self.data[self.at:self.at + n].decode()
        self.at += n
        return text


def metadata(host: str, port: int, topics: list[str] | None = None, timeout: float = 3.0) -> dict:
    """What one broker knows of the cluster: ``{"brokers": {id: port}, "topics": {name:
    {partition: {"leader": id, "replicas": [...], "isr": [...], "error": code}}}}``.

    ``topics=None`` asks for every topic. Metadata v4 (non-flexible), so that the standard
    library reads it; raises OSError when the broker does not answer."""
    if topics is None:
        body = struct.pack(">ib", -1, 0)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(
            struct.pack(">h", len(t.encode())) + t.encode() for t in topics) + struct.pack(">b", 0)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        r = _Reader(_kafka_request(sock, 3, 4, 3, body))
    r.take(">i")  # throttle_time_ms
    brokers = {}
    for _ in range(r.take(">i")):
        node_id = r.take(">i")
        r.string()  # host
        brokers[node_id] = r.take(">i")
        r.string()  # rack
    r.string()  # cluster id
    r.take(">i")  # controller id: in KRaft a random live broker, not the active controller
    found: dict[str, dict[int, dict]] = {}
    for _ in range(r.take(">i")):
        r.take(">h")  # topic error
        name = r.string() or ""
        r.take(">b")  # is_internal
        partitions = found.setdefault(name, {})
        for _ in range(r.take(">i")):
            error, index, leader = r.take(">hii")
            replicas = [r.take(">i") for _ in range(r.take(">i"))]
            isr = [r.take(">i") for _ in range(r.take(">i"))]
            partitions[index] = {"leader": leader, "replicas": replicas, "isr": isr, "error": error}
    return {"brokers": brokers, "topics": found}


def quorum_leader(host: str, port: int, timeout: float = 3.0) -> int:
    """The node id of the active KRaft controller (the leader of ``__cluster_metadata``),
    asked through a broker, which forwards DescribeQuorum v0 (flexible encoding) to it."""
    client = b"khaibao-probe"
    name = b"__cluster_metadata"
    # Request header v2: api key, version, correlation id, client id (int16 string), no tags.
    header = struct.pack(">hhih", 55, 0, 4, len(client)) + client + b"\x00"
    # topics: compact array of 1 {name compact string, partitions: compact array of 1 {index 0, no tags}, no tags}
    body = (b"\x02" + bytes([len(name) + 1]) + name + b"\x02" + struct.pack(">i", 0) + b"\x00" + b"\x00" + b"\x00")
    payload = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        data = _recv_exact(sock, size)
    r = _Reader(data)
    if r.take(">i") != 4:
        raise OSError("correlation id mismatch")
    r.uvarint()  # response header tags
    error = r.take(">h")
    if error:
        raise OSError(f"DescribeQuorum error {error}")
    if r.uvarint() - 1 < 1:
        raise OSError("DescribeQuorum returned no topic")
    r.compact_string()
    if r.uvarint() - 1 < 1:
        raise OSError("DescribeQuorum returned no partition")
    _index, error, leader = r.take(">ihi")
    if error:
        raise OSError(f"DescribeQuorum partition error {error}")
    return leader
