"""The country's divisions for the address pickers, and reading a chip card's address."""
import json

from services.declaration.places import fold, load_places


def test_pickers_and_consistency():
    places = load_places()
    assert len(places.provinces) == 63 and ("79", "Thành phố Hồ Chí Minh") in places.province_options()
    districts = dict(places.district_options("79"))
    assert districts["787"] == "Huyện Cần Giờ" and len(districts) == 22
    names = [name for _, name in places.district_options("79")]
    assert names.index("Quận 2" if "Quận 2" in names else "Quận 3") < names.index("Quận 10")  # natural order
    assert ("27664", "Thị trấn Cần Thạnh") in places.commune_options("787")
    assert places.consistent("79", "787", "27664") and not places.consistent("79", "760", "27664")
    assert not places.consistent("1", "787", "27664") and not places.consistent("79", "787", "99999")
    assert places.district_options(None) == [] and places.commune_options("nope") == []
    assert places.label("79", "787", "27664", "12 Lương Văn Nho") == (
        "12 Lương Văn Nho, Thị trấn Cần Thạnh, Huyện Cần Giờ, Thành phố Hồ Chí Minh")


def test_a_province_as_one_cached_document():
    body, etag = load_places().province_json("79")
    assert load_places().province_json("79") == (body, etag)
    document = json.loads(body)
    assert document["code"] == "79" and len(document["districts"]) == 22
    assert load_places().province_json("999") is None


def test_matching_a_chip_card_address():
    places = load_places()
    assert fold("Phường Tân Định") == "phuong tan dinh"
    assert places.match_address("Tổ 5, Ấp Miễu Ba, Thị trấn Cần Thạnh, Huyện Cần Giờ, Thành phố Hồ Chí Minh") == (
        "79", "787", "27664", "Tổ 5, Ấp Miễu Ba")
    assert places.match_address("12 Lý Tự Trọng, P. Bến Nghé, Q.1, TP.HCM") == ("79", "760", "26740", "12 Lý Tự Trọng")
    assert places.match_address("Số 1, Phường Phúc Xá, Quận Ba Đình, Hà Nội") == ("1", "1", "1", "Số 1")
    assert places.match_address("somewhere abroad") == (None, None, None, "somewhere abroad")
