"""The event envelope and the registry of event types.

Every event is one envelope (id, type, version, occurred_at, producer, trace id,
jurisdiction path, data). Each event type is a subclass of ``Event`` that pins ``type``
to a dotted past-tense name and ``data`` to its own model; together they form one
discriminated union validated by a single TypeAdapter, on the way out and on the way in.
Old versions are brought up to date by upcasters before validation.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Union
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..observability import current_trace_id

TOPIC_PREFIX = "khaibao."
DEAD_LETTER_TOPIC = "khaibao.dead-letter"


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Event(BaseModel):
    """Base of every event type. Subclasses set ``type`` (a Literal) and ``data``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    current_version: ClassVar[int] = 1
    #: The data field whose value keys the partition: events of one aggregate keep their
    #: order. ``None`` spreads the events by their own id.
    key_field: ClassVar[str | None] = None

    id: UUID = Field(default_factory=uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    trace_id: str = Field(default_factory=lambda: current_trace_id() or uuid4().hex)
    jurisdiction: str
    data: EventData

    @property
    def topic(self) -> str:
        return topic_for(self.type)

    def partition_key(self) -> str:
        """The partition key: the ``key_field`` of the data, or the event's own id."""
        if self.key_field is None:
            return str(self.id)
        return str(getattr(self.data, self.key_field))

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class UnknownEvent(ValueError):
    """The type is not in the registry (or cannot be brought to a known version)."""


class MalformedEvent(ValueError):
    """The bytes are not an envelope, or the data does not fit its type."""


_types: dict[str, type[Event]] = {}
_upcasters: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}
_adapter: TypeAdapter | None = None


def topic_for(event_type: str) -> str:
    """Events of one producing domain share a topic: ``khaibao.<domain>``."""
    return TOPIC_PREFIX + event_type.split(".", 1)[0]


def register(cls: type[Event]) -> type[Event]:
    """Class decorator: add an event type to the registry."""
    global _adapter
    event_type = cls.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    if event_type in _types and _types[event_type] is not cls:
        raise ValueError(f"event type {event_type!r} registered twice")
    cls.model_fields["version"].default = cls.current_version
    cls.model_rebuild(force=True)
    _types[event_type] = cls
    _adapter = None
    return cls


def upcaster(event_type: str, from_version: int):
    """Decorator: a function turning the data of ``from_version`` into ``from_version + 1``."""

    def wrap(fn: Callable[[dict[str, Any]], dict[str, Any]]):
        _upcasters[(event_type, from_version)] = fn
        return fn

    return wrap


def registered_types() -> dict[str, type[Event]]:
    return dict(_types)


def _union_adapter() -> TypeAdapter:
    global _adapter
    if _adapter is None:
        members = tuple(_types.values())
        union = members[0] if len(members) == 1 else Union[members]  # noqa: UP007
        _adapter = TypeAdapter(Annotated[union, Field(discriminator="type")])
    return _adapter


def upcast(raw: dict[str, Any]) -> dict[str, Any]:
    event_type = raw.get("type")
    cls = _types.get(event_type) if isinstance(event_type, str) else None
    if cls is None:
        raise UnknownEvent(f"unknown event type {event_type!r}")
    version = raw.get("version", 1)
    if not isinstance(version, int) or version < 1 or version > cls.current_version:
        raise UnknownEvent(f"{event_type} has unknown version {version!r}")
    while version < cls.current_version:
        step = _upcasters.get((event_type, version))
        if step is None:
            raise UnknownEvent(f"no upcaster for {event_type} v{version}")
        raw = {**raw, "data": step(dict(raw.get("data") or {})), "version": version + 1}
        version += 1
    return raw


def parse_event(payload: bytes | str | dict[str, Any]) -> Event:
    """Validate an incoming event: bytes -> envelope -> upcast -> typed event."""
    if isinstance(payload, dict):
        raw = payload
    else:
        try:
            raw = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedEvent("an event must be a JSON object")
    raw = upcast(raw)
    try:
        return _union_adapter().validate_python(raw)
    except ValidationError as exc:
        raise MalformedEvent(f"invalid {raw.get('type')}: {exc.error_count()} error(s): "
                             f"{exc.errors(include_url=False, include_input=False)}") from None


def validate_outgoing(event: Event) -> Event:
    """The producing end validates too: a round trip through the union."""
    return parse_event(event.model_dump(mode="json"))
