"""The person of a suspected-case alert: opened from the sealed bus event, keyed for
recognising a repeat, and shown to the recipients.

- ``open_person``: the person, symptoms and note travel sealed to our X25519 key
  (libs/common/sealed.py, issue 17 item 1); opened with the current key or one of before a
  rotation, or as carried in clear by a version 1 event.
- ``person_keys``: the blind indexes (libs/common/fieldcrypt.py, issue 17 item 2) of the
  person's phone and ID number under notification's ring, stored in ``alerts.phone_key`` and
  ``alerts.id_key``: a repeat of the same person is recognised by equality, while the
  person's details themselves are stored sealed and cannot be searched.
- ``person_view``: what an alert's page, e-mail or export shows of the stored (opened) person.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from libs.common import fieldcrypt, sealed
from libs.common.text import country_of
from libs.common.events.declaration import CaseRaised, DeclarationFlagged, PersonDetails, SensitiveDetails, person_context

from .alert_models import RING
log = logging.getLogger(__name__)


class SealedPersonError(Exception):
    """The sealed person of an event cannot be opened with our keys (the event is retried
    as any failing one: an alert is never raised without its person)."""


def open_person(event: DeclarationFlagged | CaseRaised, keys: list) -> SensitiveDetails:
    """The person, symptoms and note of an event: opened with our private keys (the current
    one, then those of before a rotation), or as carried in clear by a version 1 event."""
    data = event.data
    if data.clear is not None:
        return data.clear
    try:
        plain = sealed.open_with(keys, data.sealed_person.box, person_context(event.type, event.subject_id))
        return SensitiveDetails.model_validate_json(plain)
    except (sealed.SealedBoxError, ValueError):
        log.error("the sealed person of %s %s cannot be opened with our keys (key id %s)", event.type,
                  event.id, data.sealed_person.key_id)
        raise SealedPersonError(str(event.id)) from None


def initials(full_name: str) -> str:
    """``Nguyễn Văn An`` -> ``N.V.A.`` (what a unit may see of the person)."""
    return "".join(f"{w[0].upper()}." for w in full_name.split() if w[:1].isalpha())[:20]


def normal_form(kind: str, value: str | None) -> str | None:
    """A phone or an ID number as compared: letters and digits only, upper case; a phone
    written with the country code (``+84 913 ...``) as written at home (``0913 ...``)."""
    if not value:
        return None
    normal = "".join(ch for ch in value if ch.isalnum()).upper()
    if kind == "phone" and normal.startswith("84") and len(normal) > 9:
        normal = "0" + normal[2:]
    return normal or None


def person_keys(person: PersonDetails, ring: fieldcrypt.KeyRing | None = None) -> tuple[str | None, str | None]:
    """The blind indexes of the person's phone and ID number (``phone_key``, ``id_key``)
    under notification's ring: equal for the same person, useless without the index key."""
    ring = ring or fieldcrypt.ring(RING)
    return (ring.index(normal_form("phone", person.phone), "phone"),
            ring.index(normal_form("id_number", person.id_number), "id_number"))


@dataclass
class PersonView:
    full_name: str
    phone: str | None
    id_number: str | None
    birth: str | None
    gender: str | None
    address: str | None
    nationality: str | None = None  # as declared: the country's Vietnamese name

    def nationality_in(self, lang: str) -> str | None:
        """The nationality in the reader's language (as declared when it is no known country)."""
        if not self.nationality:
            return None
        country = country_of(self.nationality)
        return (country.en if lang == "en" else country.vi) if country else self.nationality


def person_view(raw: str | None) -> PersonView | None:
    """The person as stored with an alert or a red declaration (JSON, opened from its sealed
    column), or None once erased."""
    if not raw:
        return None
    p = PersonDetails.model_validate_json(raw)
    birth = p.birth_date.strftime("%d/%m/%Y") if p.birth_date else (str(p.birth_year) if p.birth_year else None)
    address = p.address_label or p.street
    return PersonView(p.full_name, p.phone, p.id_number, birth, p.gender, address, p.nationality)
