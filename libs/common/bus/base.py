"""The bus interface shared by the Kafka backend and the embedded durable bus.

Semantics on both: ``publish`` returns once every message is durably stored by the bus;
a consumer belongs to a group, reads messages in order per partition, and moves its
group's position only when told to ``commit`` (after the handler's transaction has
committed), so a crash before that point redelivers: at-least-once.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field


class BusUnavailable(RuntimeError):
    """The bus could not be reached or refused the operation; try again later."""


@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default=())

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None


class Consumer(ABC):
    group: str
    topics: Sequence[str]

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def poll(self, max_records: int = 100, timeout: float = 0.5) -> list[Message]:
        """The next messages of this group, or [] after ``timeout`` seconds."""

    @abstractmethod
    async def commit(self, message: Message) -> None:
        """The group has handled ``message`` and everything before it in its partition."""

    async def commit_all(self, messages: Sequence[Message]) -> None:
        """``commit`` for the last handled message of several partitions (one call where
        the bus can do it in one round trip)."""
        for message in messages:
            await self.commit(message)

    @abstractmethod
    async def lag(self) -> dict[str, int]:
        """Messages behind the end, per topic."""

    async def leave(self) -> None:
        """This group will not come back (a one-off replay or check): forget it, so that
        the bus's retention does not report it as lagging (embedded bus; a Kafka group
        without members expires by itself)."""


class Bus(ABC):
    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def ensure_topics(self, topics: Sequence[str]) -> None: ...

    @abstractmethod
    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Store every message durably, or raise BusUnavailable (then none or some were)."""

    @abstractmethod
    def consumer(self, group: str, topics: Sequence[str]) -> Consumer: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise BusUnavailable when the bus cannot be reached."""


def create_bus(url: str, **options) -> Bus:  # noqa: ANN003
    """``embedded://<path to file>`` or ``kafka://host:port[,host:port]``."""
    scheme, _, rest = url.partition("://")
    if scheme == "embedded":
        from .embedded import EmbeddedBus

        return EmbeddedBus(rest or "var/bus.db", **{k: v for k, v in options.items() if k in EmbeddedBus.OPTIONS})
    if scheme == "kafka":
        from .kafka import KafkaBus

        return KafkaBus(rest, **{k: v for k, v in options.items() if k in KafkaBus.OPTIONS})
    raise ValueError(f"unknown bus URL scheme {scheme!r}: use embedded:// or kafka://")
