"""The files of a district's deployment report (circular 2.3): .xlsx and PDF, one row per
commune, in Vietnamese (the city reads them). The PDF embeds DejaVu Sans (``fonts/``,
shipped with its licence) so that diacritics render on any computer."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONTS = Path(__file__).resolve().parent / "fonts"
REGULAR, BOLD = "ReportSans", "ReportSans-Bold"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# (key, Vietnamese column title)
COLUMNS = (
    ("submitted", "Đơn vị đăng ký"),
    ("accepted", "Đã duyệt"),
    ("exempt", "Được miễn"),
    ("forwarded", "Đã chuyển lên Thành phố"),
    ("issued", "Đã cấp tài khoản"),
    ("live", "Đã hoạt động"),
    ("ncovi", "Đã có trên NCOVI"),
    ("declarations", "Lượt khai báo"),
    ("flagged", "Tờ khai nghi nhiễm"),
    ("alerts", "Cảnh báo"),
)


@dataclass(frozen=True)
class ReportContent:
    title: str
    district_name: str
    period_start: date
    period_end: date
    generated_at: datetime  # local time
    trigger_label: str
    rows: list[tuple[str, dict[str, int]]]  # (commune name, counts)
    totals: dict[str, int]


def neutralise(value: object) -> object:
    """Text a spreadsheet would read as a formula becomes plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _period(content: ReportContent) -> str:
    return f"{content.period_start:%d/%m/%Y} – {content.period_end:%d/%m/%Y}"


def build_xlsx(content: ReportContent) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "Báo cáo triển khai"
    sheet.append([neutralise(content.title)])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(["Quận/huyện", neutralise(content.district_name)])
    sheet.append(["Thời gian khai báo", _period(content)])
    sheet.append(["Lập lúc", f"{content.generated_at:%d/%m/%Y %H:%M}", content.trigger_label])
    sheet.append(["Số đơn vị tính từ khi bắt đầu triển khai; lượt khai báo, tờ khai nghi nhiễm và cảnh báo "
                  "tính trong thời gian khai báo nêu trên."])
    sheet.append([])
    header = ["Phường/xã/thị trấn", *(title for _, title in COLUMNS)]
    sheet.append(header)
    head_row = sheet.max_row
    for cell in sheet[head_row]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="0B4A5A")
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for name, counts in content.rows:
        sheet.append([neutralise(name), *(counts.get(key, 0) for key, _ in COLUMNS)])
    sheet.append(["Tổng cộng", *(content.totals.get(key, 0) for key, _ in COLUMNS)])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    sheet.column_dimensions["A"].width = 34
    for index in range(2, len(header) + 1):
        sheet.column_dimensions[get_column_letter(index)].width = 14
    sheet.freeze_panes = sheet.cell(row=head_row + 1, column=2)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@lru_cache(maxsize=1)
def _register_fonts() -> None:
    pdfmetrics.registerFont(TTFont(REGULAR, str(FONTS / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(FONTS / "DejaVuSans-Bold.ttf")))


def build_pdf(content: ReportContent) -> bytes:
    _register_fonts()
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm, title=content.title,
                            author="Hệ thống khai báo y tế điện tử TP.HCM")
    title = ParagraphStyle("title", fontName=BOLD, fontSize=15, leading=19, spaceAfter=6)
    body = ParagraphStyle("body", fontName=REGULAR, fontSize=9.5, leading=13)
    cell = ParagraphStyle("cell", fontName=REGULAR, fontSize=8.5, leading=10.5)
    head = ParagraphStyle("head", fontName=BOLD, fontSize=8, leading=10, textColor=colors.white)

    def p(text: object, style: ParagraphStyle = cell) -> Paragraph:
        return Paragraph(str(text).replace("&", "&amp;").replace("<", "&lt;"), style)

    story = [
        p(content.title, title),
        p(f"Quận/huyện: {content.district_name} · Thời gian khai báo: {_period(content)} · "
          f"Lập lúc {content.generated_at:%d/%m/%Y %H:%M} ({content.trigger_label})", body),
        p("Số đơn vị tính từ khi bắt đầu triển khai; lượt khai báo, tờ khai nghi nhiễm và cảnh báo tính trong "
          "thời gian khai báo nêu trên.", body),
        Spacer(1, 4 * mm),
    ]
    data = [[p("Phường/xã/thị trấn", head), *(p(t, head) for _, t in COLUMNS)]]
    for name, counts in content.rows:
        data.append([p(name), *(counts.get(key, 0) for key, _ in COLUMNS)])
    data.append([p("Tổng cộng", ParagraphStyle("total", parent=cell, fontName=BOLD)),
                 *(content.totals.get(key, 0) for key, _ in COLUMNS)])
    widths = [62 * mm] + [(landscape(A4)[0] - 24 * mm - 62 * mm) / len(COLUMNS)] * len(COLUMNS)
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), REGULAR), ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#0b4a5a")),
        ("FONTNAME", (1, -1), (-1, -1), BOLD), ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#e6eef1")),
        ("ALIGN", (1, 1), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#cfd9de")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f5f8f9")]),
    ]))
    story.append(table)
    doc.build(story)
    return out.getvalue()
