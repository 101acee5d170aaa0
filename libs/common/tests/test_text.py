"""The text policy of every typed field (libs/common/text.py)."""
from __future__ import annotations

import time
import unicodedata

import pytest

from libs.common import text as typed

VALID_NAMES = ["Nguyễn Văn An", "Trần Thị Bé", "Lê Văn Cư", "Huỳnh Thị Ngọc Ánh", "Đặng Minh Khoa",
               "O'Brien", "Jean-Pierre Dupont", "Nguyễn Văn A.", "Mary’s", "สมชาย ใจดี", "नमस्ते", "张伟",
               "Иван Петров", "محمد علي", "Nguye\u0301n Va\u0306n An"]  # the last one decomposed: stored NFC

REFUSED_NAMES = [
    ("Nguyễn\x00An", "text_control"), ("Nguyễn\x85An", "text_control"), ("Nguyễn An\x85", "text_control"),
    ("Nguyễn\x1fAn", "text_control"), ("Nguyễn\tAn", "text_control"), ("Nguyễn\nAn", "text_control"),
    ("\u202enA nễyugN", "text_bidi"), ("Nguyễn \u2066An\u2069", "text_bidi"), ("Nguyễn\u200eAn", "text_bidi"),
    ("Nguyễn\u200fAn", "text_bidi"), ("Nguyễn\u200bAn", "text_bidi"), ("Nguyễn\ufeffAn", "text_bidi"),
    ("Nguyễn\ue000An", "text_unassigned"), ("Nguyễn\ud800An", "text_unassigned"),
    ("Nguyễn\u0378An", "text_unassigned"), ("Nguyễn\ufdd0An", "text_unassigned"),
    ("Nguyễn\uffffAn", "text_unassigned"), ("Nguyễn\U000f0000An", "text_unassigned"),
    ("𝕳𝖊𝖑𝖑𝖔", "name_styled"), ("𝐍𝐠𝐮𝐲𝐞𝐧", "name_styled"), ("ＮＧＵＹＥＮ", "name_styled"), ("Ⓐn", "name_styled"),
    ("'; ( )", "name_chars"), ("Robert'); DROP TABLE venues;--", "name_chars"), ("An 2", "name_chars"),
    ("<script>", "name_chars"), ("An@", "name_chars"), ("=1+1", "name_chars"), (".-'", "name_letters"),
]


@pytest.mark.parametrize("value", VALID_NAMES)
def test_names_of_every_script_are_kept_in_nfc(value):
    kept = typed.name(value)
    assert unicodedata.is_normalized("NFC", kept)
    assert kept == unicodedata.normalize("NFC", " ".join(value.split()))


def test_spaces_of_a_name_are_single():
    assert typed.name("  Nguyễn   Văn\u00a0An ") == "Nguyễn Văn An"


@pytest.mark.parametrize(("value", "code"), REFUSED_NAMES)
def test_a_refused_name_says_why_and_names_the_field(value, code):
    with pytest.raises(typed.TextRefused) as refused:
        typed.name(value, typed.FULL_NAME)
    assert refused.value.code == code
    assert refused.value.vi.startswith("Họ và tên ") and refused.value.en.startswith("Full name ")
    assert "%(" not in refused.value.vi + refused.value.en


def test_short_and_free_texts():
    assert typed.short_text(" 12 Lương\tVăn Nho\r\n", typed.STREET) == "12 Lương Văn Nho"
    assert typed.short_text("Cổng số 1 (phía chợ) - 'A'; B", typed.STREET) == "Cổng số 1 (phía chợ) - 'A'; B"
    assert typed.free_text("Dòng 1\r\nDòng 2\n\tthụt lề", typed.MESSAGE) == "Dòng 1\nDòng 2\n\tthụt lề"
    assert typed.free_text("Xin chào 👋🏽 👨‍👩‍👧", typed.MESSAGE) == "Xin chào 👋🏽 👨‍👩‍👧"  # joiners kept
    for bad in ("a\x00b", "a\x85b", "a\u202eb", "a\u2066b", "a\ue000b", "a\ud800b", "a\u0378b", "a\x7fb", "a\u2028b"):
        for check in (typed.short_text, typed.free_text):
            with pytest.raises(typed.TextRefused):
                check(bad, typed.MESSAGE)
    with pytest.raises(typed.TextRefused):
        typed.short_text("a\u0000", ("Tên đơn vị", "Unit name"))


def test_a_label_given_in_both_languages():
    with pytest.raises(typed.TextRefused) as refused:
        typed.short_text("a\x00", ("Tên đơn vị", "Unit name"))
    assert refused.value.vi.startswith("Tên đơn vị có ký tự điều khiển")
    assert refused.value.en.startswith("Unit name contains a control character")


@pytest.mark.parametrize(("typed_in", "stored"), [
    ("Việt Nam", "Việt Nam"), ("VN", "Việt Nam"), ("vn", "Việt Nam"), ("Viet Nam", "Việt Nam"),
    ("Vietnam", "Việt Nam"), ("viet nam", "Việt Nam"), ("Hàn Quốc", "Hàn Quốc"), ("KR", "Hàn Quốc"),
    ("South Korea", "Hàn Quốc"), ("Mỹ", "Hoa Kỳ"), ("United States", "Hoa Kỳ"), ("US", "Hoa Kỳ"),
    ("Nhật Bản", "Nhật Bản"), ("Japan", "Nhật Bản"), ("Trung Quốc", "Trung Quốc"), ("Lào", "Lào"),
    ("Campuchia", "Campuchia"), ("Pháp", "Pháp"), ("Đức", "Đức"), ("Úc", "Úc"), ("Australia", "Úc"),
])
def test_a_nationality_from_the_list_is_stored_by_its_vietnamese_name(typed_in, stored):
    assert typed.nationality(typed_in) == stored


@pytest.mark.parametrize("value", ["Atlantis", "XX", "Sao Hỏa", "EU", "123", "Việt\x00Nam", "Việt Nam\u202e"])
def test_an_unknown_nationality_is_refused(value):
    with pytest.raises(typed.TextRefused) as refused:
        typed.nationality(value)
    assert refused.value.vi.startswith("Quốc tịch ")


def test_the_country_list_is_iso_3166_with_vietnamese_names():
    by_code, _ = typed.countries()
    assert len(by_code) == 249 and by_code["VN"].vi == "Việt Nam" and by_code["VN"].en == "Vietnam"
    assert all(len(code) == 2 and code.isupper() and c.vi and c.en for code, c in by_code.items())
    assert max(len(c.vi) for c in by_code.values()) <= 60  # the column's size


def test_email_and_scrub():
    assert typed.email(" ten@example.vn ") == "ten@example.vn"
    for bad in ("ten@example", "tên@example.vn", "a\x00@b.vn", "a b@c.vn"):
        with pytest.raises(typed.TextRefused):
            typed.email(bad)
    assert typed.scrub("danh\x00sách\u202e.xlsx\r\n") == "danhsách.xlsx"
    assert typed.scrub("a\nb", 10) == "a b"


def test_the_checks_are_fast_enough_for_the_hot_path():
    names = ["Nguyễn Thị Minh Khai", "Trần Văn Bảy", "Lê Thị Hoa"] * 1000
    started = time.perf_counter()
    for value in names:
        typed.name(value)
        typed.short_text("12 Lương Văn Nho", typed.STREET)
        typed.nationality("Việt Nam")
    per_person = (time.perf_counter() - started) / len(names)
    assert per_person < 50e-6, per_person  # a few µs each on a quiet machine; generous for CI
