"""The event envelope and registry: a discriminated union validated at both ends."""
import json
import uuid
from typing import Literal

import pytest

from libs.common.events import (
    Event, EventData, MalformedEvent, UnknownEvent, parse_event, register, registered_types, topic_for, upcaster,
)
from libs.common.events.intake import RegistrationSubmitted, RegistrationSubmittedData
from libs.common.observability import reset_trace_id, set_trace_id


def submitted(**overrides) -> RegistrationSubmitted:
    data = dict(registration_id=uuid.uuid4(), reference="DK210601-ABCDEF", unit_name="Chợ Bình Khánh",
                unit_type="market", address="Ấp Bình Trung", commune_path="79/787/27667", receiver="commune",
                contact_name="Trần Văn C", contact_phone="0901234567")
    data.update(overrides)
    return RegistrationSubmitted(producer="intake", jurisdiction="79/787/27667",
                                 data=RegistrationSubmittedData(**data))


def test_round_trip_keeps_every_envelope_field():
    event = submitted()
    parsed = parse_event(event.to_bytes())
    assert isinstance(parsed, RegistrationSubmitted)
    assert parsed == event
    assert parsed.data.unit_name == "Chợ Bình Khánh"
    assert {"id", "type", "version", "occurred_at", "producer", "trace_id", "jurisdiction", "data"} <= set(
        json.loads(event.to_bytes()))


def test_topic_is_the_producing_domain():
    assert submitted().topic == "khaibao.intake" == topic_for("intake.registration.submitted")


def test_trace_id_comes_from_the_request_context():
    token = set_trace_id("abc123")
    try:
        assert submitted().trace_id == "abc123"
    finally:
        reset_trace_id(token)


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"{}", b'{"type": 5}'])
def test_garbage_is_refused(payload):
    with pytest.raises((MalformedEvent, UnknownEvent)):
        parse_event(payload)


def test_unknown_type_is_refused():
    raw = json.loads(submitted().to_bytes())
    raw["type"] = "intake.registration.vanished"
    with pytest.raises(UnknownEvent):
        parse_event(json.dumps(raw))


def test_data_that_does_not_fit_its_type_is_refused():
    raw = json.loads(submitted().to_bytes())
    raw["data"]["receiver"] = "province"
    with pytest.raises(MalformedEvent):
        parse_event(json.dumps(raw))
    raw = json.loads(submitted().to_bytes())
    raw["data"]["surprise"] = 1
    with pytest.raises(MalformedEvent):
        parse_event(json.dumps(raw))


def test_future_version_is_refused():
    raw = json.loads(submitted().to_bytes())
    raw["version"] = 99
    with pytest.raises(UnknownEvent):
        parse_event(json.dumps(raw))


class GreetingData(EventData):
    text: str
    language: str


@register
class GreetingSent(Event):
    current_version = 2
    type: Literal["unittest.greeting.sent"] = "unittest.greeting.sent"
    data: GreetingData


@upcaster("unittest.greeting.sent", 1)
def _greeting_v1_to_v2(data: dict) -> dict:
    return {"text": data["message"], "language": "vi"}


def test_upcaster_brings_old_versions_to_the_current_one():
    old = {"id": str(uuid.uuid4()), "type": "unittest.greeting.sent", "version": 1,
           "occurred_at": "2021-06-01T07:00:00+07:00", "producer": "test", "trace_id": "t",
           "jurisdiction": "79", "data": {"message": "Xin chào"}}
    parsed = parse_event(json.dumps(old))
    assert isinstance(parsed, GreetingSent)
    assert parsed.version == 2
    assert parsed.data == GreetingData(text="Xin chào", language="vi")


def test_new_events_carry_the_current_version():
    event = GreetingSent(producer="test", jurisdiction="79", data=GreetingData(text="hi", language="en"))
    assert event.version == 2


def test_registry_lists_the_contracts():
    types = registered_types()
    assert "intake.registration.submitted" in types
    assert "provisioning.venue.created" in types


def test_every_partition_key_names_a_field_of_its_data():
    """A misspelt ``key_field`` would break publishing at run time: catch it here."""
    for event_type, cls in registered_types().items():
        if cls.key_field is not None:
            data_fields = cls.model_fields["data"].annotation.model_fields
            assert cls.key_field in data_fields, event_type
