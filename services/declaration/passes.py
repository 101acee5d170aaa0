"""The personal QR code ("pass") shown after declaring, signed so gates verify it offline.

Text of the QR code (QR alphanumeric mode: upper case, digits and ``.``)::

    KB1.<key id>.<declaration id, hex>.<G|Y|R>.<expiry, unix seconds>.<Ed25519 signature, hex>

The signature covers everything before the last dot. It carries no personal data: a
random declaration id, the colour and the expiry. The declaration service holds the
private key; gate pages receive the public keys as a JWK set and verify with WebCrypto,
or ask ``POST /api/passes/verify`` when the browser cannot.
"""
from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

PREFIX = "KB1"
STATUS_CODES = {"green": "G", "yellow": "Y", "red": "R"}
STATUS_NAMES = {v: k for k, v in STATUS_CODES.items()}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public(key)).hexdigest()[:6].upper()


@dataclass(frozen=True)
class Verification:
    """What a gate learns from a scanned pass."""

    outcome: str            # valid | expired | red | forged
    result: str | None      # green | yellow | red (from a genuine pass)
    declaration_id: UUID | None
    expires_at: int | None


class PassKeys:
    """The signing key and every public key gates should accept (current first)."""

    def __init__(self, private_key: Ed25519PrivateKey, previous: list[Ed25519PublicKey] = ()) -> None:
        self.private_key = private_key
        # Signing is on the hot path (one pass per declaration): libsodium's Ed25519 signs
        # in about two thirds of OpenSSL's time here. Ed25519 is deterministic: the same key
        # gives the same signature either way (cryptography verifies it below and in tests).
        self.secret = crypto_sign_seed_keypair(private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))[1]
        self.kid = key_id(private_key.public_key())
        self.public: dict[str, Ed25519PublicKey] = {self.kid: private_key.public_key()}
        for key in previous:
            self.public.setdefault(key_id(key), key)

    # -- signing --------------------------------------------------------------------------

    def issue(self, declaration_id: UUID, result: str, expires_at: int) -> str:
        body = f"{PREFIX}.{self.kid}.{declaration_id.hex.upper()}.{STATUS_CODES[result]}.{int(expires_at)}"
        return body + "." + crypto_sign(body.encode(), self.secret)[:64].hex().upper()

    # -- verifying (the server-side fallback of the gate page) --------------------------

    def verify(self, text: str, now: float | None = None) -> Verification:
        forged = Verification("forged", None, None, None)
        token = "".join(text.split()).upper()
        parts = token.split(".")
        if len(parts) != 6 or parts[0] != PREFIX or len(token) > 300:
            return forged
        _, kid, ident, status, expiry, signature = parts
        key = self.public.get(kid)
        if key is None or status not in STATUS_NAMES or not expiry.isdigit() or len(ident) != 32:
            return forged
        try:
            key.verify(bytes.fromhex(signature), token.rsplit(".", 1)[0].encode())
            declaration_id = UUID(hex=ident)
        except (InvalidSignature, ValueError):
            return forged
        result, expires_at = STATUS_NAMES[status], int(expiry)
        if expires_at < (time.time() if now is None else now):
            return Verification("expired", result, declaration_id, expires_at)
        return Verification("red" if result == "red" else "valid", result, declaration_id, expires_at)

    def jwks(self) -> dict:
        """The public keys as a JWK set (RFC 8037), for the gate page's WebCrypto."""
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(key)), "kid": kid,
                          "use": "sig", "alg": "EdDSA"} for kid, key in self.public.items()]}


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the pass signing key must be an Ed25519 key")
    return key


def _load_public(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("a pass public key must be an Ed25519 key")
    return key


def load_pass_keys(private_file: Path | None, previous_files: list[Path], *, data_dir: Path,
                   create: bool) -> PassKeys:
    """The configured key; in development the one under ``data_dir/keys``, created once.

    Several web workers start at the same time: the key is written to a temporary file
    and linked into place, so exactly one is created and every worker loads that one.
    """
    path = Path(private_file) if private_file else data_dir / "keys" / "pass-private.pem"
    if not path.exists():
        if not create:
            raise RuntimeError(f"the pass signing key is missing: {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        temporary.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        temporary.chmod(0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    return PassKeys(_load_private(path), [_load_public(Path(p)) for p in previous_files])
