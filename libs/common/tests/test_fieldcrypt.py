"""Per-field encryption and the blind index (libs/common/fieldcrypt.py)."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

from libs.common import fieldcrypt
from libs.common.fieldcrypt import FieldCryptError, KeyRing, SealedString, parse_field_keys


def ring(*keys: bytes, index: bytes = b"i" * 32) -> KeyRing:
    return KeyRing(list(keys) or [os.urandom(32)], index)


def test_a_sealed_value_opens_and_shows_nothing_of_the_value():
    keys = ring()
    sealed = keys.seal("079123456789", "declarations.id_number")
    assert "079123456789" not in sealed and sealed.startswith("f1.")
    assert keys.seal("079123456789", "declarations.id_number") != sealed  # a fresh nonce each time
    assert keys.open(sealed, "declarations.id_number") == "079123456789"
    assert len(sealed) <= fieldcrypt.sealed_length(12)


def test_a_value_moved_to_another_column_or_altered_does_not_open():
    keys = ring()
    sealed = keys.seal("0901234567", "declarations.phone")
    with pytest.raises(FieldCryptError):
        keys.open(sealed, "declarations.full_name")
    altered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(FieldCryptError):
        keys.open(altered, "declarations.phone")


def test_after_rotation_old_rows_open_new_rows_use_the_new_key():
    old, new = os.urandom(32), os.urandom(32)
    before = ring(old).seal("Nguyễn Văn A", "c")
    rotated = ring(new, old)
    assert rotated.open(before, "c") == "Nguyễn Văn A"
    after = rotated.seal("Nguyễn Văn A", "c")
    assert after.split(".")[1] == fieldcrypt.key_id(new) != before.split(".")[1]
    assert rotated.needs_reseal(before) and not rotated.needs_reseal(after)
    with pytest.raises(FieldCryptError):
        ring(new).open(before, "c")  # the old key dropped: its rows no longer open


def test_the_blind_index_matches_equal_values_only_and_depends_on_its_key():
    keys = ring()
    assert keys.index(" 0901234567 ", "phone") == keys.index("0901234567", "phone")
    assert keys.index("0901234567", "phone") != keys.index("0901234568", "phone")
    assert keys.index("0901234567", "phone") != keys.index("0901234567", "id_number")
    assert keys.index("0901234567", "phone") != ring(index=b"j" * 32).index("0901234567", "phone")
    assert keys.index(None, "phone") is None and keys.index("  ", "phone") is None
    # Typed with separators, or in the international form: the same phone, the same ID number.
    assert keys.index("0901 234.567", "phone") == keys.index("+84901234567", "phone") == keys.index("0901234567",
                                                                                                     "phone")
    assert keys.index("079 301-004 567", "id_number") == keys.index("079301004567", "id_number")


def test_a_value_stored_before_encryption_reads_as_it_is():
    assert ring().open("0901234567", "declarations.phone") == "0901234567"
    assert ring().needs_reseal("0901234567")


def test_the_key_file_format_is_checked():
    key = os.urandom(32)
    assert parse_field_keys(f"# current\n{key.hex()}\n\n{os.urandom(32).hex()}\n")[0] == key
    for bad in ("", "zz\n", "abcd\n"):
        with pytest.raises(ValueError):
            parse_field_keys(bad)


def test_a_sealed_column_holds_ciphertext_in_the_database(tmp_path):
    fieldcrypt.register("test-ring", ring())
    table = Table("people", MetaData(), Column("id", String, primary_key=True),
                  Column("phone", SealedString("test-ring", "people.phone", 15)))
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), [{"id": "a", "phone": "0901234567"}, {"id": "b", "phone": None}])
        assert dict(connection.execute(select(table.c.id, table.c.phone)).all()) == {"a": "0901234567", "b": None}
    raw = (tmp_path / "db.sqlite").read_bytes()
    assert b"0901234567" not in raw


def test_bytes_seal_and_open_and_clear_bytes_pass_through():
    keys = ring()
    sealed = keys.seal_bytes(b'{"full_name":"Nguy\\u1ec5n"}', "outbox.payload")
    assert b"full_name" not in sealed and sealed.startswith(fieldcrypt.BYTES_PREFIX)
    assert keys.open_bytes(memoryview(sealed), "outbox.payload") == b'{"full_name":"Nguy\\u1ec5n"}'
    assert keys.open_bytes(b'{"a":1}', "outbox.payload") == b'{"a":1}'
    with pytest.raises(FieldCryptError):
        ring().open_bytes(sealed, "outbox.payload")  # another key


def test_the_row_sealer_seals_the_sealed_columns_and_computes_their_indexes():
    from datetime import date

    from libs.common.fieldcrypt import RowSealer, SealedDate, maintain_indexes  # noqa: F401

    keys = ring()
    fieldcrypt.register("rows", keys)
    table = Table("visits", MetaData(), Column("id", String, primary_key=True),
                  Column("phone", SealedString("rows", "visits.phone", 15, index=("phone_index", "phone"))),
                  Column("phone_index", String(32)), Column("born", SealedDate("rows", "visits.born")),
                  Column("note", String))
    row = RowSealer(table)({"id": "a", "phone": "0901234567", "born": date(2001, 4, 3), "note": "kept"})
    assert row["id"] == "a" and row["note"] == "kept"
    assert keys.open(row["phone"], "visits.phone") == "0901234567"
    assert keys.open(row["born"], "visits.born") == "2001-04-03"
    assert row["phone_index"] == keys.index("0901234567", "phone")
    assert table.c.born.type.process_result_value(row["born"], None) == date(2001, 4, 3)
    assert table.c.born.type.process_result_value("2001-04-03", None) == date(2001, 4, 3)  # stored before
