"""Helpers of the alert tests: declaration events sent through a real outbox and bus, a real
local webhook receiver (http.server in a thread).

The declaration service is built by another team; ``EventSender`` plays its part the way
it does it: events written to an outbox table of a database of its own, in a
transaction, then moved to the bus by the real outbox relay.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from libs.common import sealed
from libs.common.events.declaration import (
    CaseRaised, CaseRaisedData, DeclarationFlagged, DeclarationFlaggedData, PersonDetails, SensitiveDetails,
    VenueRef, person_context, seal_person,
)
from tests.accounts.support import BatchSender

# Notification's key pair in these tests: the helpers seal the person to its public half as
# the declaration service does; start_alerts gives the private half to notification.
PERSON_KEY = X25519PrivateKey.generate()


def write_person_key(path) -> None:  # noqa: ANN001
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PERSON_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))


def sealed_person(details: SensitiveDetails, event_type: str, subject_id: uuid.UUID):  # noqa: ANN201
    return seal_person(sealed.raw_public(PERSON_KEY.public_key()), details, event_type, subject_id)


def opened(event) -> SensitiveDetails:  # noqa: ANN001
    """What notification reads in the event's sealed person."""
    return SensitiveDetails.model_validate_json(sealed.open_box(
        PERSON_KEY, event.data.sealed_person.box, person_context(event.type, event.subject_id)))

UNIT_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")  # the Minter's default unit


def venue(commune: str = "79/787/27664", *, unit_id: uuid.UUID = UNIT_ID, name: str = "Cổng chính chợ Cần Thạnh",
          code: str = "CT7K2M9Q") -> VenueRef:
    return VenueRef(venue_id=uuid.uuid5(uuid.NAMESPACE_URL, f"venue:{commune}:{code}"), venue_code=code,
                    venue_name=name, unit_id=unit_id, unit_name="Ban quản lý chợ Cần Thạnh",
                    address="12 Lương Văn Nho", commune_path=commune)


def person(name: str = "Trần Thị Bích Ngọc") -> PersonDetails:
    return PersonDetails(full_name=name, id_type="cccd", id_number="079190001234", birth_year=1990, gender="female",
                         phone="0909 555 123", street="45 Duyên Hải", address_label="45 Duyên Hải, Cần Thạnh, Cần Giờ")


def flagged(commune: str = "79/787/27664", *, declaration_id: uuid.UUID | None = None,
            who: PersonDetails | None = None, **venue_kwargs: Any) -> DeclarationFlagged:
    place = venue(commune, **venue_kwargs)
    declaration_id = declaration_id or uuid.uuid4()
    details = SensitiveDetails(person=who or person(), symptoms=["fever", "cough"])
    return DeclarationFlagged(producer="declaration", jurisdiction=place.commune_path, data=DeclarationFlaggedData(
        declaration_id=declaration_id, submission_id=uuid.uuid4(), venue=place, commune_path=place.commune_path,
        submitted_at=datetime.now(UTC), result="red", reasons=["fever_with_respiratory_sign"],
        rule_version="2021-06", sealed_person=sealed_person(details, "declaration.flagged", declaration_id)))


def case(commune: str = "79/787/27664", **venue_kwargs: Any) -> CaseRaised:
    place = venue(commune, **venue_kwargs)
    case_id = uuid.uuid4()
    details = SensitiveDetails(person=person("Lê Văn Tâm"), symptoms=["fever"], note="Sốt 38,5 độ tại cổng")
    return CaseRaised(producer="declaration", jurisdiction=place.commune_path, data=CaseRaisedData(
        case_id=case_id, venue=place, commune_path=place.commune_path, raised_at=datetime.now(UTC),
        raised_by="00000000-0000-4000-9000-000000000099", raised_by_name="Nhân viên cổng",
        sealed_person=sealed_person(details, "declaration.case_raised", case_id)))


class EventSender(BatchSender):
    """Publishes events as the declaration service would: outbox, relay, bus."""

    producer = "declaration"


@dataclass
class Hook:
    """A webhook receiver: answers ``status`` (changeable) and keeps what it received."""

    status: int = 200
    received: list[dict] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def start(self) -> "Hook":
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                hook.received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                                      "answered": hook.status})
                self.send_response(hook.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def signed_by(secret: str, received: dict) -> bool:
    headers, body = received["headers"], received["body"]
    expected = "sha256=" + hmac.new(secret.encode(), headers["x-khaibao-timestamp"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("x-khaibao-signature", ""))


def payload(received: dict) -> dict:
    return json.loads(received["body"])
