"""Issue 18.1: the poster's fallback for people without a QR scanner.

The printed fallback is the short public address of the page where a code is typed
(``<declaration base>/v``), large, with the venue code; never the bare service root,
which is the officials' console. The PDF is read back as text, as a person would read it.
"""
from __future__ import annotations

import pypdfium2 as pdfium

from services.provisioning import posters
from services.provisioning.posters import PosterData, poster_pdf, venue_url

BASE = "https://khaibao.tphcm.gov.vn"
CODE = "K7M2P9QXZR"


def _text_and_sizes(base: str = BASE) -> tuple[str, dict[str, float]]:
    data = PosterData(unit_name="Chợ Cần Thạnh", venue_name="Cổng chính", address="1 Đường Lương Văn Nho",
                      area="Thị trấn Cần Thạnh", code=CODE, url=venue_url(base, CODE), help_line="1022",
                      declaration_base=base)
    document = pdfium.PdfDocument(poster_pdf(data))
    try:
        page = document[0]
        textpage = page.get_textpage()
        text = " ".join(textpage.get_text_range().split())
        sizes: dict[str, float] = {}
        # The font size of the first character of each searched string, in points.
        for needle in ("khaibao.tphcm.gov.vn/v", "K7M2P-9QXZR"):
            searcher = textpage.search(needle)
            found = searcher.get_next()
            assert found is not None, needle
            sizes[needle] = textpage.get_charbox(found[0])[3] - textpage.get_charbox(found[0])[1]
        return text, sizes
    finally:
        document.close()


def test_the_typing_address_is_the_code_page_without_scheme():
    assert posters.typing_address("https://khaibao.tphcm.gov.vn/") == "khaibao.tphcm.gov.vn/v"
    assert posters.typing_address("http://127.0.0.1:8303") == "127.0.0.1:8303/v"


def test_the_poster_prints_the_v_address_large_with_the_code():
    text, sizes = _text_and_sizes()
    # Both languages say where to type the code: the /v page, not the console's root.
    assert "khaibao.tphcm.gov.vn/v" in text
    assert "Hoặc mở khaibao.tphcm.gov.vn và" not in text
    assert "Or open khaibao.tphcm.gov.vn and" not in text
    assert "Không quét được mã? Mở địa chỉ này và nhập mã địa điểm" in text
    assert "Cannot scan? Open this address and type the venue code" in text
    # Large: readable from a step away, as large as the code itself (both at least 5 mm high glyphs).
    assert sizes["khaibao.tphcm.gov.vn/v"] >= 0.6 * sizes["K7M2P-9QXZR"], sizes
    assert sizes["khaibao.tphcm.gov.vn/v"] * 25.4 / 72 >= 4.0, sizes
