"""Printable A4 posters of venues (circular 2.1): the QR code and how to declare.

Each poster: a header, the unit's name, the venue and its address, the QR code (the
symbol itself 152 mm square, scannable from a distance; Hanoi asked for at least
15 x 15 cm) pointing to ``<declaration public base>/v/<code>``, the code in letters and,
as large, the short address of the page where it is typed (``<base>/v``), the steps to declare in Vietnamese and English, and the help line. The text uses
DejaVu Sans, shipped in ``fonts/`` and embedded (subset) in every PDF, so diacritics
render and can be extracted whatever fonts the host has. The QR code is drawn as
vector rectangles: sharp at any printer resolution.
"""
from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import segno
from reportlab.lib.colors import HexColor, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

FONTS = Path(__file__).resolve().parent / "fonts"
REGULAR, BOLD = "KhaibaoSans", "KhaibaoSans-Bold"
BRAND = HexColor("#0b4a5a")
INK = HexColor("#1b2a30")
MUTED = HexColor("#4a5a62")
QR_SIZE = 152 * mm
MARGIN = 12 * mm
MAX_POSTERS_PER_ZIP = 3000


@lru_cache(maxsize=1)
def register_fonts() -> None:
    pdfmetrics.registerFont(TTFont(REGULAR, str(FONTS / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(FONTS / "DejaVuSans-Bold.ttf")))


@dataclass(frozen=True)
class PosterData:
    unit_name: str
    venue_name: str
    address: str
    area: str
    code: str
    url: str
    help_line: str
    declaration_base: str


def venue_url(declaration_base: str, code: str) -> str:
    return f"{declaration_base.rstrip('/')}/v/{code}"


def typing_address(declaration_base: str) -> str:
    """The short public address of the page where a code is typed (``/v``), as printed:
    without the scheme, which nobody types and every browser adds."""
    host = re.sub(r"^https?://", "", declaration_base.strip()).rstrip("/")
    return f"{host}/v"


def spaced_code(code: str) -> str:
    """``ABCDEFGHJK`` -> ``ABCDE-FGHJK``: easier to read out and type."""
    return "-".join(code[i:i + 5] for i in range(0, len(code), 5))


STEPS_VI = (
    "Mở camera điện thoại hoặc ứng dụng quét mã QR (Zalo, PC-Covid...).",
    "Quét mã QR ở trên: trang khai báo y tế của địa điểm này sẽ mở ra.",
    "Điền tờ khai, bấm Gửi và đưa màn hình kết quả cho nhân viên tại cổng.",
    "Không quét được mã? Mở {address} và nhập mã địa điểm. Không có điện thoại thông minh? "
    "Nhân viên tại cổng sẽ khai báo giúp bạn.",
)
STEPS_EN = (
    "Open your phone camera or a QR scanner app.",
    "Scan the QR code above: the health declaration form of this venue opens.",
    "Fill it in, submit it and show the result screen to the gate staff.",
    "Cannot scan? Open {address} and type the venue code. No smartphone? The gate staff will declare for you.",
)


def _text_lines(text: str, font: str, size: float, width: float, max_lines: int) -> list[str]:
    lines = simpleSplit(text, font, size, width)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip()[:-1] + "…"
    return lines


def _fit(text: str, font: str, sizes: tuple[float, ...], width: float, max_lines: int) -> tuple[float, list[str]]:
    """The largest size at which ``text`` fits in ``max_lines`` lines of ``width``."""
    for size in sizes:
        lines = simpleSplit(text, font, size, width)
        if len(lines) <= max_lines:
            return size, lines
    return sizes[-1], _text_lines(text, font, sizes[-1], width, max_lines)


def _draw_qr(canvas: Canvas, url: str, x: float, y: float, size: float) -> None:
    qr = segno.make(url, error="m", micro=False)
    matrix = [list(row) for row in qr.matrix]
    count = len(matrix)
    module = size / count
    canvas.setFillColor(HexColor("#000000"))
    for r, row in enumerate(matrix):
        c = 0
        while c < count:
            if row[c]:
                start = c
                while c < count and row[c]:
                    c += 1
                # Rows are drawn from the top; a hair of overlap avoids white seams.
                canvas.rect(x + start * module, y + size - (r + 1) * module, (c - start) * module + 0.05,
                            module + 0.05, stroke=0, fill=1)
            else:
                c += 1


def draw_poster(canvas: Canvas, data: PosterData) -> None:
    register_fonts()
    width, height = A4
    inner = width - 2 * MARGIN
    # Header band.
    band = 20 * mm
    canvas.setFillColor(BRAND)
    canvas.rect(0, height - band, width, band, stroke=0, fill=1)
    canvas.setFillColor(white)
    canvas.setFont(BOLD, 19)
    canvas.drawCentredString(width / 2, height - 10.5 * mm, "KHAI BÁO Y TẾ ĐIỆN TỬ")
    canvas.setFont(REGULAR, 10)
    canvas.drawCentredString(width / 2, height - 16.5 * mm, "Health declaration · Thành phố Hồ Chí Minh")
    y = height - band - 8 * mm
    # The unit, the venue, the address.
    canvas.setFillColor(INK)
    size, lines = _fit(data.unit_name, BOLD, (17, 15, 13, 11), inner, 2)
    for line in lines:
        canvas.setFont(BOLD, size)
        canvas.drawCentredString(width / 2, y, line)
        y -= size * 1.2
    canvas.setFillColor(MUTED)
    where = f"{data.venue_name} · {data.address}" + (f", {data.area}" if data.area else "")
    size, lines = _fit(where, REGULAR, (10.5, 9.5, 8.5), inner, 2)
    for line in lines:
        canvas.setFont(REGULAR, size)
        canvas.drawCentredString(width / 2, y, line)
        y -= size * 1.25
    # The QR code, with as much quiet zone around it as the page allows.
    y -= 6 * mm
    _draw_qr(canvas, data.url, (width - QR_SIZE) / 2, y - QR_SIZE, QR_SIZE)
    y -= QR_SIZE + 11 * mm
    canvas.setFillColor(INK)
    canvas.setFont(REGULAR, 10)
    canvas.drawCentredString(width / 2, y + 1.5 * mm, "Mã địa điểm / Venue code")
    y -= 7 * mm
    canvas.setFont(BOLD, 24)
    canvas.drawCentredString(width / 2, y, spaced_code(data.code))
    # The fallback for a phone without a scanner: the page where the code is typed, as
    # large as the code (the service's root is the officials' console, not this page).
    address = typing_address(data.declaration_base)
    y -= 5.5 * mm
    canvas.setFont(REGULAR, 8.6)
    canvas.setFillColor(MUTED)
    canvas.drawCentredString(width / 2, y, "Không quét được mã? Mở địa chỉ này và nhập mã địa điểm · "
                                           "Cannot scan? Open this address and type the venue code")
    y -= 7.5 * mm
    canvas.setFillColor(INK)
    size, _ = _fit(address, BOLD, (22, 19, 16, 13), inner, 1)
    canvas.setFont(BOLD, size)
    canvas.drawCentredString(width / 2, y, address)
    y -= 6 * mm
    # The steps, Vietnamese on the left, English on the right.
    column = (inner - 8 * mm) / 2
    bottom = MARGIN + 12 * mm
    for x, title, steps in ((MARGIN, "Cách khai báo", STEPS_VI), (MARGIN + column + 8 * mm, "How to declare", STEPS_EN)):
        ty = y
        canvas.setFillColor(BRAND)
        canvas.setFont(BOLD, 10.5)
        canvas.drawString(x, ty, title)
        ty -= 4.8 * mm
        canvas.setFillColor(INK)
        for number, step in enumerate(steps, start=1):
            for i, line in enumerate(simpleSplit(f"{number}. {step.format(address=address)}", REGULAR, 8.6, column)):
                if ty < bottom:
                    break
                canvas.setFont(REGULAR, 8.6)
                canvas.drawString(x + (0 if i == 0 else 3.5 * mm), ty, line)
                ty -= 3.8 * mm
            ty -= 0.6 * mm
    # Footer: the law, the help line.
    canvas.setStrokeColor(BRAND)
    canvas.setLineWidth(0.6)
    canvas.line(MARGIN, MARGIN + 9 * mm, width - MARGIN, MARGIN + 9 * mm)
    canvas.setFillColor(INK)
    canvas.setFont(BOLD, 9.5)
    canvas.drawCentredString(width / 2, MARGIN + 4.5 * mm,
                             f"Đường dây hỗ trợ / Help line: {data.help_line}")
    canvas.setFont(REGULAR, 7.2)
    canvas.setFillColor(MUTED)
    canvas.drawCentredString(width / 2, MARGIN,
                             "Khai báo gian dối là vi phạm pháp luật Việt Nam. "
                             "A false declaration is a violation of Vietnamese law.")


def _new_canvas(buffer: io.BytesIO, title: str) -> Canvas:
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1)
    canvas.setTitle(title)
    canvas.setAuthor("Sở Thông tin và Truyền thông TP. Hồ Chí Minh")
    canvas.setSubject("Mã QR khai báo y tế / Health declaration QR code")
    canvas.setCreator("khaibao")
    return canvas


def poster_pdf(data: PosterData) -> bytes:
    """One A4 page for one venue."""
    buffer = io.BytesIO()
    canvas = _new_canvas(buffer, f"Mã QR khai báo y tế - {data.unit_name} - {data.venue_name}")
    draw_poster(canvas, data)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def slug(text: str, limit: int = 60) -> str:
    """An ASCII file name part: ``Chợ Cần Thạnh`` -> ``cho-can-thanh``."""
    text = text.replace("đ", "d").replace("Đ", "D")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit] or "don-vi"


def posters_zip(items: list[tuple[str, PosterData]], into) -> None:  # noqa: ANN001 - a binary file
    """A ZIP of one PDF per venue; ``items`` are (folder, poster). Runs in a thread."""
    used: set[str] = set()
    with zipfile.ZipFile(into, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for folder, data in items:
            name = f"{folder}/{slug(data.venue_name)}-{data.code}.pdf" if folder else \
                f"{slug(data.venue_name)}-{data.code}.pdf"
            if name in used:
                continue
            used.add(name)
            archive.writestr(name, poster_pdf(data))
