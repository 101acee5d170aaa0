"""Spreadsheets the system writes: the row report of a refused list, and exports.

Every text cell goes through ``write_text``: text that starts like a formula (= + - @)
is written as text with a leading apostrophe, never as a formula.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from libs.common.adminunits import AdminTree

from ..models import Registration
from ..routing import EXEMPTIONS, STATUS_LABELS, UNIT_TYPES
from ..text import local_time
from .columns import DATA_SHEET, ERROR_HEADER, ORDER, REFERENCE_HEADER, STATUS_URL_HEADER, WIDTHS, header, write_text
from .reader import ParsedList

ERROR_FILL = PatternFill("solid", fgColor="FDE2E1")
HEADER_FONT = Font(bold=True)


def _save(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def row_report(parsed: ParsedList, errors: dict[int, list[str]], lang: str = "vi") -> bytes:
    """The list as it was sent, with an error column first: every row, its errors if any."""
    book = Workbook()
    sheet = book.active
    sheet.title = DATA_SHEET["en" if lang == "en" else "vi"]
    columns = ["row", "errors", *ORDER]
    titles = ["Dòng" if lang != "en" else "Row", ERROR_HEADER[lang if lang == "en" else "vi"],
              *(header(n, lang) for n in ORDER)]
    for index, title in enumerate(titles, start=1):
        cell = sheet.cell(row=1, column=index)
        write_text(cell, title)
        cell.font = HEADER_FONT
    sheet.column_dimensions["A"].width = 7
    sheet.column_dimensions["B"].width = 60
    for index, name in enumerate(ORDER, start=3):
        sheet.column_dimensions[get_column_letter(index)].width = WIDTHS[name]
    sheet.freeze_panes = "C2"
    for out, row in enumerate(parsed.rows, start=2):
        sheet.cell(row=out, column=1, value=row.number)
        messages = errors.get(row.number, [])
        if messages:
            cell = sheet.cell(row=out, column=2)
            write_text(cell, "\n".join(messages))
            cell.fill = ERROR_FILL
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for index, name in enumerate(columns[2:], start=3):
            value = row.values.get(name)
            if value is not None:
                write_text(sheet.cell(row=out, column=index), value)
    return _save(book)


def registrations_sheet(registrations: Sequence[Registration], tree: AdminTree, *, lang: str = "vi",
                        status_url: Callable[[Registration], str] | None = None, title: str | None = None) -> bytes:
    """Registrations as a list in the template's columns, with reference and status (neutralised)."""
    en = lang == "en"
    book = Workbook()
    sheet = book.active
    sheet.title = (title or DATA_SHEET["en" if en else "vi"])[:31]
    extra = [REFERENCE_HEADER["en" if en else "vi"], "Status" if en else "Trạng thái",
             "Submitted" if en else "Ngày gửi", "Late" if en else "Trễ hạn"]
    if status_url is not None:
        extra.append(STATUS_URL_HEADER["en" if en else "vi"])
    titles = [*extra, *(header(n, lang).rstrip(" *") for n in ORDER)]
    for index, title_text in enumerate(titles, start=1):
        cell = sheet.cell(row=1, column=index)
        write_text(cell, title_text)
        cell.font = HEADER_FONT
        sheet.column_dimensions[get_column_letter(index)].width = 20
    sheet.freeze_panes = "B2"
    for out, r in enumerate(registrations, start=2):
        values: Iterable[object] = [
            r.reference, STATUS_LABELS[r.status].text(lang), local_time(r.submitted_at),
            ("yes" if en else "có") if r.late else "",
            *([status_url(r)] if status_url is not None else []),
            r.unit_name, UNIT_TYPES[r.unit_type].label(lang) if r.unit_type in UNIT_TYPES else r.unit_type,
            r.address, (tree.get(r.commune_path).name if tree.get(r.commune_path) else r.commune_path),
            (tree.get(r.district_path).name if tree.get(r.district_path) else r.district_path),
            r.tax_code, r.contact_name, r.contact_position, r.contact_phone, r.contact_email, r.venue_count, r.notes,
            EXEMPTIONS[r.exempt_reason].label(lang) if r.exempt_reason in EXEMPTIONS else None,
        ]
        for index, value in enumerate(values, start=1):
            if value not in (None, ""):
                write_text(sheet.cell(row=out, column=index), value)
    return _save(book)
