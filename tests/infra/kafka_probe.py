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
