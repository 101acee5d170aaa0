"""Sealed boxes: a secret encrypted for one service, carried safely through events.

Provisioning issues initial passwords; notification delivers them. The bus must never
see a password in clear, so provisioning seals it with notification's X25519 public
key and only notification, which alone holds the private half, can open it:

    ephemeral X25519 key pair (per box)  ->  shared secret with the recipient's key
    HKDF-SHA256(shared, salt = ephemeral public || recipient public, info = INFO)
    ChaCha20-Poly1305(key, random nonce, plaintext, associated data = context)

The context (for credentials: the account id and the credentials id) is authenticated,
so a box cannot be moved to another account's event. A box is text:
``v1.<key id>.<base64url(ephemeral public | nonce | ciphertext)>``; the key id names the
recipient key (first 8 bytes of SHA-256 of its raw public bytes) so that a key can be
rotated and old boxes still recognised.

Keys are PEM files: in development the pair is created in ``<data dir>/keys`` on first
use; in production the files are provisioned (the private one only where notification
runs). Functions taking raw bytes (``seal``) run in worker processes too.
"""
from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
INFO = b"khaibao sealed box v1"
PRIVATE_FILE = "credentials-private.pem"
PUBLIC_FILE = "credentials-public.pem"


class SealedBoxError(ValueError):
    """A box that is malformed, for another key, or altered."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: bytes | X25519PublicKey) -> str:
    raw = public if isinstance(public, bytes) else raw_public(public)
    return hashlib.sha256(raw).hexdigest()[:16]


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=INFO).derive(shared)


def seal(recipient_public: bytes, plaintext: bytes, context: bytes) -> str:
    """Encrypt ``plaintext`` for the holder of the private key of ``recipient_public`` (raw 32 bytes)."""
    recipient = X25519PublicKey.from_public_bytes(recipient_public)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = raw_public(ephemeral.public_key())
    key = _derive(ephemeral.exchange(recipient), ephemeral_public, recipient_public)
    nonce = os.urandom(12)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, context)
    return f"{VERSION}.{key_id(recipient_public)}.{_b64(ephemeral_public + nonce + ciphertext)}"


def open_box(private_key: X25519PrivateKey, box: str, context: bytes) -> bytes:
    """The plaintext of ``box``; SealedBoxError if it is not ours, malformed or altered."""
    try:
        version, kid, body = box.split(".", 2)
        raw = _unb64(body)
    except (ValueError, TypeError):
        raise SealedBoxError("malformed sealed box") from None
    recipient_public = raw_public(private_key.public_key())
    if version != VERSION:
        raise SealedBoxError(f"unknown sealed box version {version!r}")
    if kid != key_id(recipient_public):
        raise SealedBoxError("sealed for another key")
    if len(raw) < 32 + 12 + 16:
        raise SealedBoxError("sealed box too short")
    ephemeral_public, nonce, ciphertext = raw[:32], raw[32:44], raw[44:]
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        key = _derive(shared, ephemeral_public, recipient_public)
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, context)
    except (InvalidTag, ValueError):
        raise SealedBoxError("sealed box altered or for another context") from None


def box_key_id(box: str) -> str | None:
    """The key id a box names (None when it is not a box)."""
    parts = box.split(".", 2)
    return parts[1] if len(parts) == 3 else None


def open_with(keys: list[X25519PrivateKey], box: str, context: bytes) -> bytes:
    """Open ``box`` with the one of ``keys`` it was sealed to (after a rotation: the current
    key and the previous ones); SealedBoxError if none is."""
    if not keys:
        raise SealedBoxError("no key to open the box with")
    kid = box_key_id(box)
    for key in keys:
        if key_id(key.public_key()) == kid:
            return open_box(key, box, context)
    return open_box(keys[0], box, context)  # says why: malformed, or for another key


# --- key files -------------------------------------------------------------------------

def load_private(path: Path) -> X25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError("the credentials private key must be an X25519 key")
    return key


def load_public(path: Path) -> X25519PublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, X25519PublicKey):
        raise ValueError("the credentials public key must be an X25519 key")
    return key


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another process wrote first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def ensure_key_pair(private_path: Path, public_path: Path) -> None:
    """Create the pair if missing (development); safe when two processes race."""
    private_path, public_path = Path(private_path), Path(public_path)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    if not private_path.exists():
        key = X25519PrivateKey.generate()
        _write_atomically(private_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
    if not public_path.exists():
        public = load_private(private_path).public_key()
        public_path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(public_path, public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)


def default_paths(data_dir: Path) -> tuple[Path, Path]:
    keys = Path(data_dir) / "keys"
    return keys / PRIVATE_FILE, keys / PUBLIC_FILE
