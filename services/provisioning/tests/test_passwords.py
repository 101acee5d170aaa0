"""Initial passwords: random, readable, hashed with argon2id, sealed for notification only."""
from __future__ import annotations

import math
import uuid

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from libs.common import sealed
from libs.common.events.provisioning import credentials_context
from services.provisioning.passwords import (
    GROUP_LENGTH, GROUPS, PASSWORD_ALPHABET, chunks, make_credentials, new_password,
)


def test_initial_passwords_are_random_readable_and_strong():
    passwords = {new_password() for _ in range(2000)}
    assert len(passwords) == 2000
    for password in list(passwords)[:50]:
        groups = password.split("-")
        assert len(groups) == GROUPS and all(len(g) == GROUP_LENGTH for g in groups)
        assert set("".join(groups)) <= set(PASSWORD_ALPHABET)
    assert not set("01iloO") & set(PASSWORD_ALPHABET)  # nothing to misread on paper
    assert GROUPS * GROUP_LENGTH * math.log2(len(PASSWORD_ALPHABET)) > 98
    # Every letter of the alphabet is used, evenly enough.
    letters = "".join(p.replace("-", "") for p in passwords)
    counts = [letters.count(c) for c in PASSWORD_ALPHABET]
    assert min(counts) > 0.8 * len(letters) / len(PASSWORD_ALPHABET)


def test_credentials_are_hashed_and_sealed_for_the_notification_key_only():
    private = X25519PrivateKey.generate()
    public = sealed.raw_public(private.public_key())
    ids = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(3)]
    issued = make_credentials(ids, 1, 12288, public)
    hasher = PasswordHasher()
    for (account_id, credentials_id), item in zip(ids, issued):
        assert item.password_hash.startswith("$argon2id$v=19$m=12288,t=1,p=1$")
        assert item.key_id == sealed.key_id(public)
        password = sealed.open_box(private, item.sealed, credentials_context(account_id, credentials_id)).decode()
        assert hasher.verify(item.password_hash, password)
        assert password not in item.sealed and password not in item.password_hash
        # At the first sign-in the hash is upgraded to the full cost.
        assert hasher.check_needs_rehash(item.password_hash)
    with pytest.raises(sealed.SealedBoxError):
        sealed.open_box(private, issued[0].sealed, credentials_context(*ids[1]))


def test_one_time_passwords_for_gate_staff_are_returned_not_sealed():
    [(digest, password)] = make_credentials([(str(uuid.uuid4()), "")], 1, 12288, None)
    PasswordHasher().verify(digest, password)
    with pytest.raises(VerificationError):
        PasswordHasher().verify(digest, new_password())


def test_chunks_split_evenly_and_keep_order():
    assert chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert chunks([1], 4) == [[1]]
    assert chunks([], 2) == []
