"""Reading what a gate scanner types: chip ID cards (CCCD) and national personal QR codes."""
from services.declaration.idcards import parse_cccd, parse_identity, parse_qr1405

ADDRESS = "Tổ 5, Ấp Miễu Ba, Thị trấn Cần Thạnh, Huyện Cần Giờ, Thành phố Hồ Chí Minh"


def test_the_seven_fields_of_a_chip_card():
    found = parse_identity(f"079185012345|023456789|Trần  Thị Hoa|15081985|Nữ|{ADDRESS}|20062021")
    assert found is not None and found.source == "cccd"
    assert (found.id_type, found.id_number, found.full_name) == ("cccd", "079185012345", "Trần Thị Hoa")
    assert (found.birth, found.gender, found.address) == ("15/08/1985", "female", ADDRESS)


def test_the_six_field_variant_and_slashed_dates():
    found = parse_identity(f"079185012345|Lê Văn Nam|01/12/1970|Nam|{ADDRESS}|20/06/2021")
    assert found is not None and (found.full_name, found.birth, found.gender) == ("Lê Văn Nam", "01/12/1970", "male")
    seven_slashed = parse_cccd(f"079185012345||Lê Văn Nam|01/12/1970|Nam|{ADDRESS}|20/06/2021")
    assert seven_slashed is not None and seven_slashed.birth == "01/12/1970"


def test_the_national_personal_qr_of_decision_1405():
    found = parse_qr1405("079185012345|Trần Thị Hoa|1985-08-15|0|QID-9|EXT")
    assert found is not None and found.source == "qr1405"
    assert (found.id_type, found.id_number, found.birth) == ("cccd", "079185012345", "15/08/1985")
    on_behalf = parse_identity("123456789|Bé Na|2016-02-29|1||")
    assert on_behalf is not None and (on_behalf.id_type, on_behalf.birth) == ("cmnd", "29/02/2016")
    no_id = parse_identity("|Bé Na|2016-02-29|1||")
    assert no_id is not None and no_id.id_number is None


def test_what_is_not_an_identity():
    for text in ("", "KB1.ABC.DEF", "hello|world", "07918501234|Hoa|15081985|Nữ|x|20062021",  # 11 digits
                 "079185012345|Hoa|31021985|Nữ|x|20062021",  # 31 February
                 "079185012345|Hoa|1985-02-31|0|q|e", "079185012345|Hoa|1985-01-01|2|q|e",
                 "079185012345|  |15081985|Nữ|x|20062021", "a|" * 600):
        assert parse_identity(text) is None, text
