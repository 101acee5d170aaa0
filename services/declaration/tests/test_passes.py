"""The personal QR code: signed, short, no personal data, verifiable with the public key alone."""
import threading
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.declaration.passes import PassKeys, load_pass_keys

ID = uuid.UUID("01a21691-a426-7fad-b469-e6967a503f41")


def test_a_pass_verifies_and_says_its_colour():
    keys = PassKeys(Ed25519PrivateKey.generate())
    expires = int(time.time()) + 3600
    for result, outcome in (("green", "valid"), ("yellow", "valid"), ("red", "red")):
        text = keys.issue(ID, result, expires)
        found = keys.verify(text)
        assert (found.outcome, found.result, found.declaration_id, found.expires_at) == (outcome, result, ID, expires)
    text = keys.issue(ID, "green", expires)
    assert text.startswith(f"KB1.{keys.kid}.{ID.hex.upper()}.G.{expires}.") and len(text) < 200
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.")  # QR alphanumeric mode
    assert keys.verify(" " + text.lower() + "\n").outcome == "valid"  # typed by a scanner in caps lock


def test_the_signature_is_plain_ed25519():
    """Passes are signed with libsodium for speed: the signature is exactly OpenSSL's (Ed25519
    is deterministic), so any Ed25519 verifier (the gate page's WebCrypto) accepts it."""
    private = Ed25519PrivateKey.generate()
    text = PassKeys(private).issue(ID, "yellow", 1_900_000_000)
    body, signature = text.rsplit(".", 1)
    assert bytes.fromhex(signature) == private.sign(body.encode())


def test_expired_forged_and_unknown_passes():
    keys = PassKeys(Ed25519PrivateKey.generate())
    now = time.time()
    assert keys.verify(keys.issue(ID, "green", int(now) - 1)).outcome == "expired"
    assert keys.verify(keys.issue(ID, "red", int(now) - 1)).result == "red"
    good = keys.issue(ID, "red", int(now) + 60)
    prefix, kid, ident, status, expiry, signature = good.split(".")
    tampered = [
        ".".join((prefix, kid, ident, "G", expiry, signature)),               # red made green
        ".".join((prefix, kid, ident, status, str(int(expiry) + 86400), signature)),  # extended
        ".".join((prefix, kid, uuid.uuid4().hex.upper(), status, expiry, signature)),  # someone else's
        ".".join((prefix, "ABCDEF", ident, status, expiry, signature)),       # unknown key
        good[:-2] + ("00" if not good.endswith("00") else "11"),              # bad signature
        PassKeys(Ed25519PrivateKey.generate()).issue(ID, "green", int(now) + 60),  # another system's key
        "KB1", "", "KB1.....", "079185012345|Trần Thị Hoa|15081985|Nữ|x|20062021", "x" * 1000,
        good.replace(ident, "ZZ" + ident[2:]),
    ]
    for text in tampered:
        found = keys.verify(text)
        assert found.outcome == "forged" and found.declaration_id is None, text


def test_old_keys_still_verify_after_a_rotation(tmp_path: Path):
    old = Ed25519PrivateKey.generate()
    old_pass = PassKeys(old).issue(ID, "green", int(time.time()) + 60)
    public = tmp_path / "old-public.pem"
    public.write_bytes(old.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    keys = load_pass_keys(None, [public], data_dir=tmp_path, create=True)
    assert keys.verify(old_pass).outcome == "valid"
    jwks = keys.jwks()["keys"]
    assert [k["kid"] for k in jwks][0] == keys.kid and len(jwks) == 2
    assert all(set(k) == {"kty", "crv", "x", "kid", "use", "alg"} for k in jwks)


def test_workers_starting_together_share_one_key(tmp_path: Path):
    loaded: list[PassKeys] = []
    threads = [threading.Thread(target=lambda: loaded.append(load_pass_keys(None, [], data_dir=tmp_path, create=True)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({k.kid for k in loaded}) == 1
    assert oct((tmp_path / "keys" / "pass-private.pem").stat().st_mode)[-3:] == "600"
    assert list((tmp_path / "keys").iterdir()) == [tmp_path / "keys" / "pass-private.pem"]


def test_production_never_creates_a_key(tmp_path: Path):
    import pytest

    with pytest.raises(RuntimeError):
        load_pass_keys(tmp_path / "missing.pem", [], data_dir=tmp_path, create=False)
    assert isinstance(load_pass_keys(None, [], data_dir=tmp_path, create=True).private_key.public_key(),
                      Ed25519PublicKey)
