"""The A4 poster: its QR code decodes to the venue URL and is at least 15 x 15 cm; its text
keeps the Vietnamese diacritics (the font is embedded); a ZIP holds one PDF per venue.

The PDF is rendered with pypdfium2 and the QR code read back with zxing-cpp, as a phone
would read the printed page.
"""
from __future__ import annotations

import io
import zipfile

import pypdfium2 as pdfium
import pytest
import zxingcpp

from services.provisioning.posters import (
    PosterData, poster_pdf, posters_zip, slug, spaced_code, venue_url,
)

CM_PER_POINT = 2.54 / 72
UNIT = "Trường Trung học phổ thông Bình Khánh – Cơ sở ấp Bình Thạnh"


def _poster(code: str = "K7M2P9QXZR", base: str = "https://khaibao.tphcm.gov.vn", **extra) -> PosterData:
    values = {"unit_name": UNIT, "venue_name": "Cổng chính", "address": "12 Đường Rừng Sác",
              "area": "Xã Bình Khánh, Huyện Cần Giờ", "code": code, "url": venue_url(base, code),
              "help_line": "1022", "declaration_base": base}
    values.update(extra)
    return PosterData(**values)


@pytest.fixture(scope="module")
def rendered():
    data = _poster()
    document = pdfium.PdfDocument(poster_pdf(data))
    yield data, document
    document.close()


def test_one_a4_page(rendered):
    _, document = rendered
    assert len(document) == 1
    width, height = document[0].get_size()
    assert (round(width * CM_PER_POINT, 1), round(height * CM_PER_POINT, 1)) == (21.0, 29.7)


def test_the_qr_code_is_the_venue_url_and_at_least_15_cm(rendered):
    data, document = rendered
    scale = 3  # 216 dpi
    image = document[0].render(scale=scale).to_pil()
    results = zxingcpp.read_barcodes(image)
    assert [r.format for r in results] == [zxingcpp.BarcodeFormat.QRCode]
    [qr] = results
    assert qr.text == "https://khaibao.tphcm.gov.vn/v/K7M2P9QXZR" == data.url
    corners = qr.position
    width_px = max(abs(corners.top_right.x - corners.top_left.x), abs(corners.bottom_right.x - corners.bottom_left.x))
    height_px = max(abs(corners.bottom_left.y - corners.top_left.y), abs(corners.bottom_right.y - corners.top_right.y))
    width_cm, height_cm = width_px / scale * CM_PER_POINT, height_px / scale * CM_PER_POINT
    # zxing reports the outer corners of the symbol (quiet zone excluded).
    assert width_cm >= 15.0 and height_cm >= 15.0, (width_cm, height_cm)
    assert width_cm < 17.0  # and it still fits the page with its quiet zone


def test_the_text_keeps_its_diacritics(rendered):
    _, document = rendered
    text = document[0].get_textpage().get_text_range()
    for expected in ("KHAI BÁO Y TẾ ĐIỆN TỬ", UNIT, "Cổng chính · 12 Đường Rừng Sác, Xã Bình Khánh, Huyện Cần Giờ",
                     "Mã địa điểm / Venue code", "K7M2P-9QXZR", "Cách khai báo", "How to declare",
                     "Quét mã QR ở trên: trang khai báo y tế của địa điểm này sẽ mở ra.",
                     "Scan the QR code above", "Đường dây hỗ trợ / Help line: 1022",
                     "Khai báo gian dối là vi phạm pháp luật Việt Nam."):
        assert expected in " ".join(text.split()), expected


def test_the_font_is_embedded(rendered):
    data, _ = rendered
    pdf = poster_pdf(data)
    assert b"/FontFile2" in pdf  # TrueType glyphs inside the file: no font needed on the host
    assert b"/ToUnicode" in pdf  # text can be searched and extracted


def test_a_long_name_still_fits(tmp_path):
    long_name = "Công ty Trách nhiệm hữu hạn Một thành viên Dịch vụ Công ích Huyện Cần Giờ – Chi nhánh Bình Khánh – " \
                "Xí nghiệp Vệ sinh Môi trường và Cây xanh số 2"
    document = pdfium.PdfDocument(poster_pdf(_poster(unit_name=long_name)))
    try:
        assert len(document) == 1
        [qr] = zxingcpp.read_barcodes(document[0].render(scale=2).to_pil())
        assert qr.text.endswith("/v/K7M2P9QXZR")
        text = " ".join(document[0].get_textpage().get_text_range().split())
        assert "Công ty Trách nhiệm hữu hạn Một thành viên" in text
    finally:
        document.close()


def test_a_zip_holds_one_pdf_per_venue():
    items = [("truong-a", _poster("AAAAA22222", venue_name="Cổng 1")),
             ("truong-a", _poster("BBBBB33333", venue_name="Cổng 2")),
             ("cho-b", _poster("CCCCC44444", venue_name="Cổng chính"))]
    buffer = io.BytesIO()
    posters_zip(items, buffer)
    with zipfile.ZipFile(buffer) as archive:
        names = sorted(archive.namelist())
        assert names == ["cho-b/cong-chinh-CCCCC44444.pdf", "truong-a/cong-1-AAAAA22222.pdf",
                         "truong-a/cong-2-BBBBB33333.pdf"]
        document = pdfium.PdfDocument(archive.read("truong-a/cong-2-BBBBB33333.pdf"))
        [qr] = zxingcpp.read_barcodes(document[0].render(scale=2).to_pil())
        assert qr.text == "https://khaibao.tphcm.gov.vn/v/BBBBB33333"
        document.close()


def test_helpers():
    assert spaced_code("ABCDEFGHJK") == "ABCDE-FGHJK"
    assert slug("Chợ Đồng Hòa – Cổng 1") == "cho-dong-hoa-cong-1"
    assert venue_url("http://127.0.0.1:8103/", "ABC") == "http://127.0.0.1:8103/v/ABC"
