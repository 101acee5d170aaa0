"""Personal fields encrypted at rest, and their keyed blind index for equality lookups.

A stolen disk or a copied backup must not read like a phone book (issue 17, Decree
13/2023/ND-CP). Each identifying column (ID number, phone, name, address, ...) is stored as

    f1.<key id>.<base64url(nonce | AES-256-GCM(key, nonce, value, associated data = context))>

where ``context`` names the column (``declarations.phone``): a value copied into another
column does not open. The key ring holds the current key (every new write) and the
previous ones (reading only), so that ``khaibao keys rotate field`` takes effect at once
and the old rows keep opening; ``khaibao keys reseal`` rewrites old rows with the current
key, and keys older than the retention period may be dropped (their rows are gone).

Equality lookups cannot compare ciphertexts (a random nonce per write), so a column that is
searched has a companion index column holding ``HMAC-SHA256(index key, kind:normalised
value)`` truncated to 128 bits: the gate's repeat check, a person's declarations by ID
number or phone. The index key is separate from the encryption keys and is not rotated
with them (rotating it means recomputing every index: ``khaibao keys reseal --reindex``).

Services declare columns with ``SealedString(ring, context)``; each service registers its
ring at start (``register``), from its settings (``ring_from_settings``). Without key files
(development and tests) the ring is derived from the service's secret key, which
``khaibao up`` makes per data folder; production refuses to start without the files.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import String
from sqlalchemy.types import TypeDecorator

VERSION = "f1"
NONCE = 12
KEY_BYTES = 32
BYTES_PREFIX = b"\x00" + VERSION.encode() + b"."  # a sealed binary value (no JSON or text starts so)
INDEX_BYTES = 16  # 128 bits of the HMAC: collisions are negligible, the column stays short


class FieldCryptError(ValueError):
    """A stored value that does not open: altered, of another column, or of an unknown key."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(key: bytes) -> str:
    """A short public name of a key (not the key): 8 hex digits of its SHA-256."""
    return hashlib.sha256(b"khaibao field key id|" + key).hexdigest()[:8]


def sealed_length(plain_chars: int) -> int:
    """The column length that holds a sealed value of ``plain_chars`` characters (UTF-8 up
    to 4 bytes each): prefix, key id, nonce and tag in base64."""
    raw = NONCE + 4 * plain_chars + 16
    return len(VERSION) + 1 + 8 + 1 + (raw * 4 + 2) // 3


_SEPARATORS = re.compile(r"[\s.()-]")


def normalise(value: str, kind: str | None = None) -> str:
    """The form an index is computed over: NFC, no surrounding blanks, case-folded; an ID
    number or a phone without its separators (``0912 345 678`` = ``0912.345.678``), a
    Vietnamese phone in its national form (``+84912345678`` = ``0912345678``)."""
    text = unicodedata.normalize("NFC", value).strip().casefold()
    if kind in ("phone", "id_number"):
        text = _SEPARATORS.sub("", text)
    if kind == "phone" and text.startswith("+84"):
        text = "0" + text[3:]
    return text


@dataclass
class KeyRing:
    """The current key, the previous ones (opening only) and the index key."""

    keys: list[bytes]
    index_key: bytes
    _by_id: dict[str, AESGCM] = field(init=False, repr=False)
    _current_id: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a key ring needs at least one key")
        for key in [*self.keys, self.index_key]:
            if len(key) != KEY_BYTES:
                raise ValueError(f"a field key is {KEY_BYTES} bytes")
        self._by_id = {key_id(key): AESGCM(key) for key in self.keys}
        self._current_id = key_id(self.keys[0])

    @property
    def current_id(self) -> str:
        return self._current_id

    def seal(self, value: str | None, context: str) -> str | None:
        if value is None:
            return None
        nonce = os.urandom(NONCE)
        sealed = self._by_id[self._current_id].encrypt(nonce, value.encode(), context.encode())
        return f"{VERSION}.{self._current_id}.{_b64(nonce + sealed)}"

    def open(self, stored: str | None, context: str) -> str | None:
        """The value of ``stored``; a value written before encryption (no prefix) as it is."""
        if stored is None or not is_sealed(stored):
            return stored
        _, kid, body = stored.split(".", 2)
        cipher = self._by_id.get(kid)
        if cipher is None:
            raise FieldCryptError(f"{context}: sealed with key {kid}, which this service is not given")
        raw = _unb64(body)
        try:
            return cipher.decrypt(raw[:NONCE], raw[NONCE:], context.encode()).decode()
        except InvalidTag:
            raise FieldCryptError(f"{context}: altered, or sealed for another column") from None

    def index(self, value: str | None, kind: str) -> str | None:
        """The blind index of ``value`` for lookups of ``kind`` (``id_number``, ``phone``)."""
        if value is None or not value.strip():
            return None
        digest = hmac.new(self.index_key, f"{kind}:{normalise(value, kind)}".encode(), hashlib.sha256).digest()
        return digest[:INDEX_BYTES].hex()

    def seal_bytes(self, data: bytes, context: str) -> bytes:
        """Binary form (a column of bytes, such as the outbox's event payload):
        ``\\x00f1.<key id>.<nonce | ciphertext>``, no base64."""
        nonce = os.urandom(NONCE)
        sealed = self._by_id[self._current_id].encrypt(nonce, data, context.encode())
        return BYTES_PREFIX + self._current_id.encode() + b"." + nonce + sealed

    def open_bytes(self, stored: bytes, context: str) -> bytes:
        """The data of ``stored``; bytes written before encryption (no prefix) as they are."""
        stored = bytes(stored)
        if not stored.startswith(BYTES_PREFIX):
            return stored
        start = len(BYTES_PREFIX)
        kid = stored[start:start + 8].decode("ascii", "replace")
        cipher = self._by_id.get(kid)
        if cipher is None:
            raise FieldCryptError(f"{context}: sealed with key {kid}, which this service is not given")
        raw = stored[start + 9:]
        try:
            return cipher.decrypt(raw[:NONCE], raw[NONCE:], context.encode())
        except InvalidTag:
            raise FieldCryptError(f"{context}: altered, or sealed for another column") from None

    def needs_reseal(self, stored: str | None) -> bool:
        """Stored in clear, or under a key that is not the current one."""
        return stored is not None and (not is_sealed(stored) or stored.split(".", 2)[1] != self._current_id)


class ClearRing(KeyRing):
    """Benchmarks only (``KHAIBAO_FIELD_ENCRYPTION=false``, refused in production): writes
    in clear, to measure what the encryption costs; reads and indexes as the real ring."""

    def seal(self, value: str | None, context: str) -> str | None:
        return value

    def seal_bytes(self, data: bytes, context: str) -> bytes:
        return data

    def needs_reseal(self, stored: str | None) -> bool:
        return False


def is_sealed(stored: str) -> bool:
    return stored.startswith(VERSION + ".") and stored.count(".") >= 2


# --- keys: files and derivation ------------------------------------------------------------

def parse_field_keys(text: str) -> list[bytes]:
    """``field_keys``: one key a line, hex, the current first; ``#`` comments allowed."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            key = bytes.fromhex(line)
        except ValueError:
            raise ValueError(f"line {number}: not hexadecimal") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"line {number}: a key is {KEY_BYTES} bytes ({2 * KEY_BYTES} hex digits)")
        keys.append(key)
    if not keys:
        raise ValueError("no key in the file")
    return keys


def parse_index_key(text: str) -> bytes:
    return parse_field_keys(text)[0]


def derived_ring(secret: str, service: str) -> KeyRing:
    """Development and tests: keys derived from the service's secret key (which
    ``khaibao up`` makes per data folder), one encryption and one index key per service."""
    def derive(purpose: str) -> bytes:
        return hashlib.sha256(f"khaibao {purpose} key|{service}|{secret}".encode()).digest()
    return KeyRing([derive("field")], derive("index"))


def ring_from_files(field_keys_file: Path, index_key_file: Path) -> KeyRing:
    return KeyRing(parse_field_keys(Path(field_keys_file).read_text()),
                   parse_index_key(Path(index_key_file).read_text()))


# --- the rings of the running services, and the column type ----------------------------------

_RINGS: dict[str, KeyRing] = {}


def register(name: str, ring: KeyRing) -> None:
    """Make ``ring`` the one the columns of ``name`` (a service) seal and open with."""
    _RINGS[name] = ring


def registered(name: str) -> KeyRing | None:
    """The ring of ``name`` if its service registered one (code outside a running service,
    such as a unit test writing to the outbox, has none)."""
    return _RINGS.get(name)


def open_bytes_registered(stored: bytes, context: str) -> bytes:
    """``stored`` opened by whichever registered ring holds its key (a process runs one
    service, so its own; tests run several services in one process, whose events a
    relay of another may carry). Clear bytes as they are."""
    stored = bytes(stored)
    if not stored.startswith(BYTES_PREFIX):
        return stored
    kid = stored[len(BYTES_PREFIX):len(BYTES_PREFIX) + 8].decode("ascii", "replace")
    for keys in _RINGS.values():
        if kid in keys._by_id:
            return keys.open_bytes(stored, context)
    raise FieldCryptError(f"{context}: sealed with key {kid}, which this service is not given")


def ring(name: str) -> KeyRing:
    try:
        return _RINGS[name]
    except KeyError:
        raise RuntimeError(f"no field key ring registered for {name!r}: the service registers it at start") from None


class SealedString(TypeDecorator):
    """A text column stored sealed with the ring of ``ring_name``, opened on read.

    The database sees only ciphertext: such a column cannot be compared, sorted or
    searched (use its blind index column). ``length`` is the plain length; the column is
    sized for the sealed form. ``index``: the companion column holding the blind index of
    this value, and the index's kind (``("phone_index", "phone")``): the hot path's
    ``RowSealer`` and ``khaibao keys reseal`` fill it from the value."""

    impl = String
    cache_ok = True

    def __init__(self, ring_name: str, context: str, length: int | None = None,
                 index: tuple[str, str] | None = None) -> None:
        super().__init__(sealed_length(length) if length else None)
        self.ring_name = ring_name
        self.context = context
        self.index = index

    def to_text(self, value):  # noqa: ANN001, ANN201
        """The Python value as the text sealed (a date subclass overrides both)."""
        return value

    def from_text(self, text: str):  # noqa: ANN201
        return text

    def process_bind_param(self, value, dialect):  # noqa: ANN001, ANN201
        return None if value is None else ring(self.ring_name).seal(self.to_text(value), self.context)

    def process_result_value(self, value, dialect):  # noqa: ANN001, ANN201
        return None if value is None else self.from_text(ring(self.ring_name).open(value, self.context))


class SealedDate(SealedString):
    """A date stored sealed (its ISO form); a clear date stored before reads as it is."""

    cache_ok = True

    def __init__(self, ring_name: str, context: str) -> None:
        super().__init__(ring_name, context, 10)

    def to_text(self, value):  # noqa: ANN001, ANN201
        return value.isoformat() if isinstance(value, date) else str(value)

    def from_text(self, text: str):  # noqa: ANN201
        return date.fromisoformat(text[:10])


def sealed_columns(table) -> list:  # noqa: ANN001
    """The columns of ``table`` (a SQLAlchemy Table) stored sealed."""
    return [column for column in table.columns if isinstance(column.type, SealedString)]


def maintain_indexes(model) -> None:  # noqa: ANN001 - an ORM class
    """ORM writes of ``model`` fill its blind index columns from their values (the index
    column and its source are attributes of the same names as their columns)."""
    from sqlalchemy import event

    pairs = [(c.type.index[0], c.name, c.type.index[1], c.type.ring_name)
             for c in sealed_columns(model.__table__) if c.type.index]

    def fill(mapper, connection, target) -> None:  # noqa: ANN001
        for column, source, kind, ring_name in pairs:
            setattr(target, column, ring(ring_name).index(getattr(target, source), kind))

    event.listen(model, "before_insert", fill)
    event.listen(model, "before_update", fill)


class RowSealer:
    """What the hot path does in the request, where SQLAlchemy's types are bypassed (a row
    written by asyncpg's JSON or sqlite3's tuples): a row as a dict -> the same row with
    each sealed column sealed and its blind index columns computed. One ring lookup per
    row; the ring holds one AESGCM object per key (no key setup per value)."""

    def __init__(self, table) -> None:  # noqa: ANN001
        columns = sealed_columns(table)
        names = {column.type.ring_name for column in columns}
        if len(names) > 1:
            raise ValueError(f"{table.name}: its sealed columns name several rings: {sorted(names)}")
        self.ring_name = names.pop() if names else None
        self.seals = tuple((c.name, c.type.context, c.type.to_text) for c in columns)
        self.indexes = tuple((c.type.index[0], c.name, c.type.index[1]) for c in columns if c.type.index)

    def __call__(self, values: dict) -> dict:
        if self.ring_name is None:
            return values
        keys = ring(self.ring_name)
        row = dict(values)
        for target, source, kind in self.indexes:
            row[target] = keys.index(values.get(source), kind)
        seal = keys.seal
        for name, context, to_text in self.seals:
            value = values.get(name)
            if value is not None:
                row[name] = seal(to_text(value), context)
        return row
