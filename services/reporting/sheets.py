"""Spreadsheet output shared by this service's personal-data exports.

``neutralise`` makes a cell that a spreadsheet would read as a formula (text starting
with ``= + - @``, a tab or a carriage return) plain text by prefixing an apostrophe: a
visitor who types ``=HYPERLINK(...)`` as their name cannot attack the contact tracer who
opens the file (the attack on Luca's health-department export).
"""
from __future__ import annotations

import io
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from libs.common.ui.i18n import get_translations

from .exposure import ExposureResult, local_text

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"  # this service's catalogue, over the common one
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RESULTS = {"green": "Green", "yellow": "Yellow", "red": "Red"}
CHANNELS = {"self": "Self-declared", "gate": "At the gate"}


def neutralise(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _row(sheet: Worksheet, values: list[object], bold: bool = False) -> None:
    sheet.append([neutralise(v) for v in values])
    if bold:
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)


def exposure_workbook(result: ExposureResult, *, exported_by: str, exported_at: str, lang: str = "vi") -> bytes:
    """Contacts of an exposure query for contact tracers: the query on top, one row per declaration."""
    _ = get_translations(lang, (LOCALE_DIR,)).gettext  # headers and values alike
    book = Workbook()
    sheet = book.active
    sheet.title = _("Contacts")[:31]
    venue = result.venue
    _row(sheet, [_("Exposure query — personal data for contact tracing only")], bold=True)
    for label, value in (
        (_("Case reference"), result.query.case_reference),
        (_("Reason"), result.query.reason),
        (_("Venue"), f"{venue.unit_name} — {venue.name}".strip(" —")),
        (_("Address"), venue.address),
        (_("Venue code"), venue.code),
        (_("From"), local_text(result.start)),
        (_("To"), local_text(result.end)),
        (_("Declarations found"), result.total),
        (_("Exported by"), exported_by),
        (_("Exported at"), exported_at),
    ):
        _row(sheet, [label, value])
    sheet.append([])
    _row(sheet, [_("No."), _("Time declared"), _("Full name"), _("Phone"), _("Screening"), _("How"),
                 _("People in the group"), _("Declaration number"), _("Note")], bold=True)
    for number, contact in enumerate(result.contacts, 1):
        note = _("The declaration of the case") if contact.is_index else (
            _("Contact details erased (retention period)") if contact.full_name is None else "")
        _row(sheet, [number, local_text(contact.submitted_at), contact.full_name or "", contact.phone or "",
                     _(RESULTS.get(contact.result, contact.result)), _(CHANNELS.get(contact.channel, contact.channel)),
                     contact.group_size, str(contact.declaration_id), note])
    for column, width in zip("ABCDEFGHI", (6, 18, 30, 16, 12, 16, 10, 38, 30), strict=True):
        sheet.column_dimensions[column].width = width
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
