"""The checks of a declaration, one by one (the API and the form share them)."""
from datetime import date

import pytest
from pydantic import ValidationError

from services.declaration.messages import api_errors, describe
from services.declaration.schemas import DeclarationIn, PersonIn, kind_of, normalize_phone, parse_birth


def person(**overrides):  # noqa: ANN003, ANN201
    values = {"full_name": "Nguyễn Văn An", "id_number": "079099012345", "birth": "1990", "gender": "male",
              "phone": "0909123456", "province_code": "79", "district_code": "787", "commune_code": "27664",
              "street": "1 Lương Văn Nho"}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def test_birth_as_a_date_or_a_year():
    assert (parse_birth("1990").year, parse_birth("1990").date) == (1990, None)
    assert parse_birth("1/2/1990").date == date(1990, 2, 1)
    assert parse_birth("01-02-1990").date == date(1990, 2, 1)
    assert parse_birth("1990-02-01").date == date(1990, 2, 1)
    assert parse_birth("29/02/2000").date == date(2000, 2, 29)
    assert str(parse_birth("01/02/1990")) == "01/02/1990"
    assert parse_birth("01/02/1990").age(date(2021, 1, 31)) == 30
    assert parse_birth("01/02/1990").age(date(2021, 2, 1)) == 31


@pytest.mark.parametrize(("text", "code"), [
    ("29/02/2021", "birth_impossible"), ("00/01/1990", "birth_impossible"), ("32/01/1990", "birth_impossible"),
    ("1899", "birth_too_old"), ("01/01/3000", "birth_future"), ("3000", "birth_future"),
    ("90", "birth_format"), ("1.2.90", "birth_format"), ("", "missing"),
])
def test_impossible_births(text, code):
    with pytest.raises(Exception) as caught:
        parse_birth(text)
    assert caught.value.type == code


def test_phones_are_normalised():
    assert normalize_phone("0909 123 456") == "0909123456"
    assert normalize_phone("+84 909.123.456") == "0909123456"
    assert normalize_phone("84909123456") == "0909123456"
    assert normalize_phone("(028) 3829 6565") == "02838296565"
    assert normalize_phone("+33 6 12 34 56 78") == "+33612345678"
    for bad in ("12345", "0909-123", "abc0909123456", "+1", "090912345678"):
        with pytest.raises(Exception):
            normalize_phone(bad)


def test_id_documents():
    assert kind_of("079099012345") == "cccd" and kind_of("023456789") == "cmnd" and kind_of("C1234567") == "passport"
    assert PersonIn.model_validate(person(id_number="079 099 012 345")).id_number == "079099012345"
    assert PersonIn.model_validate(person(id_number="023456789")).id_type == "cmnd"
    assert PersonIn.model_validate(person(id_number="c1234567")).id_number == "C1234567"
    assert PersonIn.model_validate(person(id_type="passport", id_number="123456789")).id_type == "passport"
    child = PersonIn.model_validate(person(id_number=None, birth=str(date.today().year - 5)))
    assert child.id_number is None and child.id_type is None
    for bad, code in ((person(id_type="cccd", id_number="023456789"), "id_cccd"),
                      (person(id_type="cmnd", id_number="079099012345"), "id_cmnd"),
                      (person(id_type="passport", id_number="AB"), "id_passport"),
                      (person(id_number="12345"), "id_digits"),
                      (person(id_number=None), "id_missing")):
        with pytest.raises(ValidationError) as caught:
            PersonIn.model_validate(bad)
        assert caught.value.errors()[0]["type"] == code


def test_names_and_addresses():
    assert PersonIn.model_validate(person(full_name="  Nguyễn   Văn   An ")).full_name == "Nguyễn Văn An"
    assert PersonIn.model_validate(person(full_name="Jean-Pierre O'Neil")).full_name == "Jean-Pierre O'Neil"
    for bad in ("A", "An2", "<b>An</b>", "An@home"):
        with pytest.raises(ValidationError):
            PersonIn.model_validate(person(full_name=bad))
    with pytest.raises(ValidationError) as caught:
        PersonIn.model_validate(person(district_code="760"))  # Cần Thạnh is not in District 1
    assert caught.value.errors()[0]["type"] == "address"
    # Any province of the country: Hà Nội, Ba Đình, Phúc Xá.
    assert PersonIn.model_validate(person(province_code="1", district_code="1", commune_code="1"))


def test_messages_are_vietnamese_first_and_english_on_request():
    with pytest.raises(ValidationError) as caught:
        DeclarationIn.model_validate({"venue_code": "ABCD2345", "consent": False,
                                      "people": [person(birth="31/02/1990", phone="1")]})
    vi, en = describe(caught.value, "vi"), describe(caught.value, "en")
    assert vi["people.0.birth"] == "Ngày này không có thật: kiểm tra lại ngày và tháng."
    assert en["people.0.birth"] == "This date does not exist: check the day and the month."
    assert vi["people.0.phone"].startswith("Nhập số điện thoại 10 hoặc 11 chữ số")
    assert vi["consent"].startswith("Vui lòng đánh dấu ô xác nhận")
    items = api_errors(caught.value)
    assert {tuple(i["loc"]) for i in items} == {("people", 0, "birth"), ("people", 0, "phone"), ("consent",)}
    assert all(i["msg"] and i["msg_en"] and i["type"] for i in items)


def test_the_gate_case_report_applies_the_text_policy():
    from urllib.parse import urlencode

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.declaration.casework import read_case
    from services.declaration.passes import PassKeys
    from services.declaration.web import Form

    keys = PassKeys(Ed25519PrivateKey.generate())

    def read(**fields: str):  # noqa: ANN202
        values = {"full_name": "Nguyễn Văn An", "phone": "", "id_number": "", "note": "Ho, sốt", "declaration": ""}
        return read_case(Form(urlencode({**values, **fields}).encode()), keys)

    _, errors, parsed = read(note="Ho nhiều\r\nsốt cao")
    assert errors == {} and parsed["note"] == "Ho nhiều\nsốt cao"
    for field, value in [("full_name", "Nguyễn\x00An"), ("full_name", "𝕳𝖊𝖑𝖑𝖔"), ("full_name", "An'; ( )"),
                         ("note", "sốt\u202e"), ("note", "sốt\x85"), ("phone", "0909\x00123456"),
                         ("id_number", "0790\ue000"), ("declaration", "KB1.\x00")]:
        _, errors, _ = read(**{field: value})
        assert list(errors) == [field], (field, value, errors)
        assert not isinstance(errors[field], str) and errors[field].vi and errors[field].en


@pytest.mark.parametrize(("typed", "stored"), [("Việt Nam", "Việt Nam"), ("VN", "Việt Nam"), ("viet nam", "Việt Nam"),
                                               ("Korea", "Hàn Quốc"), ("Mỹ", "Hoa Kỳ"), ("JP", "Nhật Bản")])
def test_a_nationality_is_stored_by_its_vietnamese_name(typed, stored):
    assert PersonIn.model_validate(person(nationality=typed)).nationality == stored


def test_a_name_is_stored_in_nfc_with_single_spaces():
    data = PersonIn.model_validate(person(full_name="  Nguye\u0301n   Va\u0306n  An "))
    assert data.full_name == "Nguy\u00e9n V\u0103n An"  # precomposed é and ă
