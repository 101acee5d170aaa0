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


# -- a card read in part: the reasons, and only the fields that could be read -------------

def _reasons(text: str) -> dict:
    from services.declaration.idcards import read_identity
    from services.declaration.messages import translate

    found = read_identity(text)
    assert found.recognised and found.problems, text
    return {problem.field: translate(problem.message, "vi", **dict(problem.params)) for problem in found.problems}


def test_an_eleven_digit_number_says_so_and_keeps_the_rest():
    from services.declaration.idcards import read_identity

    text = f"07918501234|023456789|Trần Thị Hoa|15081985|Nữ|{ADDRESS}|20062021"
    assert _reasons(text) == {"id_number": "Số CCCD đọc được có 11 chữ số, trong khi số CCCD phải có đúng 12 chữ số."}
    found = read_identity(text).prefill
    assert (found.id_number, found.full_name, found.birth, found.gender, found.address) == (
        None, "Trần Thị Hoa", "15/08/1985", "female", ADDRESS)  # the failed field is never prefilled


def test_an_impossible_date_of_birth_says_which_date():
    from services.declaration.idcards import read_identity

    text = f"079185012345|Trần Thị Hoa|31/02/1990|Nữ|{ADDRESS}|20/06/2021"
    assert _reasons(text) == {"birth": "Ngày sinh 31/02/1990 không có thật."}
    found = read_identity(text).prefill
    assert (found.id_number, found.full_name, found.birth) == ("079185012345", "Trần Thị Hoa", None)
    assert _reasons("079185012345|Hoa|1990-02-31|0|q|e") == {"birth": "Ngày sinh 31/02/1990 không có thật."}
    assert _reasons(f"079185012345|Hoa|99999999|Nữ|{ADDRESS}|20062021") == {
        "birth": "Ngày sinh 99/99/9999 không có thật."}
    assert _reasons(f"079185012345|Hoa|15-08|Nữ|{ADDRESS}|20062021") == {
        "birth": "Ngày sinh “15-08” không phải là một ngày."}


def test_a_missing_field_is_named():
    from services.declaration.idcards import read_identity

    assert _reasons(f"079185012345|023456789||15081985|Nữ|{ADDRESS}|20062021") == {"full_name": "Thiếu họ tên."}
    assert _reasons(f"079185012345|023456789|Trần Thị Hoa||Nữ|{ADDRESS}|20062021") == {"birth": "Thiếu ngày sinh."}
    # The name lost from a seven-field card: five fields were found where seven belong.
    lost = f"079185012345|023456789|15081985|Nữ|{ADDRESS}|20062021"
    reasons = _reasons(lost)
    assert reasons == {None: "Mã trên căn cước có 6 trường thay vì 7: thiếu một trường.", "full_name": "Thiếu họ tên."}
    found = read_identity(lost).prefill
    assert (found.id_number, found.birth, found.gender, found.full_name) == ("079185012345", "15/08/1985", "female", "")
    assert _reasons(f"|023456789|Trần Thị Hoa|15081985|Nữ|{ADDRESS}|20062021") == {"id_number": "Thiếu số CCCD."}


def test_other_reasons_at_once_and_what_is_not_an_identity_at_all():
    from services.declaration.idcards import read_identity

    assert _reasons("0791850123456|Hoa|31021985|Nữ|x|20062021") == {
        "id_number": "Số CCCD đọc được có 13 chữ số, trong khi số CCCD phải có đúng 12 chữ số.",
        "birth": "Ngày sinh 31/02/1985 không có thật."}
    assert _reasons("079185012345|Hoa|15081985|Nữ|x|31022021") == {None: "Ngày cấp 31/02/2021 trên căn cước không có thật."}
    for junk in ("hello", "KB1.ABC.DEF", "hello|world", "a|b|c|d|e|f|g|h", "https://x.vn/a|b", "a|" * 600):
        assert read_identity(junk).recognised is False, junk
    assert read_identity(f"079185012345|Trần Thị Hoa|15081985|Nữ|{ADDRESS}|20062021").problems == ()


def test_hostile_scans_give_a_reading_never_an_error():
    from services.declaration.idcards import read_identity

    for text in ("", " ", "|" * 200, "079185012345|", "\x00|\x01|\x02|\x03|\x04|\x05", "9" * 100000,
                 "079185012345|<script>|31/02/1990|Nữ|x|y", "079185012345|A|" + "1" * 5000 + "|Nam|x|20062021",
                 "0791850123456789012|Hoa|15081985|Nữ|x|20062021", "\ud7ff" * 10 + "|a|b|c|d|e"):
        found = read_identity(text)
        assert found.recognised in (True, False)
        for problem in found.problems:
            assert all(len(value) <= 20 for _, value in problem.params), problem  # nothing long echoed back
