"""Event contracts: the envelope, the registry, and every event type of the system."""
from . import declaration, intake, notification, provisioning, reporting, subject  # noqa: F401  (registers the event types)
from .envelope import (
    DEAD_LETTER_TOPIC,
    Event,
    EventData,
    MalformedEvent,
    UnknownEvent,
    parse_event,
    register,
    registered_types,
    topic_for,
    upcaster,
    validate_outgoing,
)

__all__ = [
    "DEAD_LETTER_TOPIC", "Event", "EventData", "MalformedEvent", "UnknownEvent", "parse_event",
    "register", "registered_types", "topic_for", "upcaster", "validate_outgoing",
]
