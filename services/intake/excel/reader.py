"""Reading a filled list back: file checks, then the rows as text.

Refused whole, each with a clear message: a file that is not an .xlsx workbook (an old
.xls, an .ods, a PDF, a renamed text file), a macro-enabled workbook, more data than
allowed once unpacked, no sheet with the template's header row, merged cells, more rows
than allowed. Formulas are reported on their rows (a list must hold values, not
formulas); text that merely starts with = + - @ is kept as text.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from openpyxl import load_workbook

from ..text import Msg
from ..validation import FIELDS
from .columns import DATA_SHEET, LOOKUP_SHEET, field_for_header

HEADER_SEARCH_ROWS = 5
PROGRESS_EVERY = 250
MERGE = re.compile(rb"<(?:\w+:)?mergeCell\b[^>]*\bref=\"([A-Z]+[0-9]+(?::[A-Z]+[0-9]+)?)\"")
REQUIRED_COLUMNS = tuple(n for n, f in FIELDS.items() if f.required and n not in ("commune", "venue_count"))

NOT_A_SPREADSHEET = Msg("Tệp không phải bảng tính Excel (.xlsx). Hãy tải mẫu danh sách, điền và lưu dạng .xlsx.",
                        "The file is not an Excel workbook (.xlsx). Download the list template, fill it in and save "
                        "it as .xlsx.")
OLD_EXCEL = Msg("Tệp là bảng tính Excel 97-2003 (.xls). Hãy mở tệp và chọn Lưu thành > Sổ làm việc Excel (.xlsx).",
                "The file is an Excel 97-2003 workbook (.xls). Open it and save it as an Excel workbook (.xlsx).")
OPEN_DOCUMENT = Msg("Tệp là bảng tính OpenDocument (.ods). Hãy lưu lại dạng Excel (.xlsx).",
                    "The file is an OpenDocument spreadsheet (.ods). Save it as an Excel workbook (.xlsx).")
MACROS = Msg("Tệp có macro (.xlsm). Hãy lưu lại dạng Sổ làm việc Excel (.xlsx) không có macro.",
             "The workbook contains macros (.xlsm). Save it as a plain Excel workbook (.xlsx).")
TOO_BIG = Msg("Tệp quá lớn ({size} MB); giới hạn là {limit} MB. Hãy chia danh sách thành nhiều tệp.",
              "The file is too large ({size} MB); the limit is {limit} MB. Split the list into several files.")
TOO_MUCH_DATA = Msg("Tệp chứa quá nhiều dữ liệu ({size} MB khi giải nén; giới hạn {limit} MB). Hãy chỉ giữ trang "
                    "danh sách và chia thành nhiều tệp.",
                    "The file holds too much data ({size} MB unpacked; the limit is {limit} MB). Keep only the list "
                    "sheet and split it into several files.")
DAMAGED = Msg("Không đọc được tệp: tệp bị hỏng hoặc không đúng định dạng .xlsx.",
              "The file cannot be read: it is damaged or not a valid .xlsx workbook.")
WRONG_SHEET = Msg("Không tìm thấy trang tính '{sheet}' có dòng tiêu đề của mẫu danh sách (các trang trong tệp: {sheets}). "
                  "Hãy dùng mẫu danh sách của hệ thống.",
                  "No sheet '{sheet_en}' with the header row of the list template (sheets in the file: {sheets}). "
                  "Use the system's list template.")
MISSING_COLUMNS = Msg("Trang '{sheet}' thiếu cột: {columns}. Hãy dùng mẫu danh sách của hệ thống.",
                      "Sheet '{sheet}' lacks the columns: {columns_en}. Use the system's list template.")
MERGED = Msg("Trang '{sheet}' có ô gộp ({ranges}). Hãy bỏ gộp ô (Merge & Center > Unmerge) rồi gửi lại.",
             "Sheet '{sheet}' has merged cells ({ranges}). Unmerge them and send the file again.")
TOO_MANY_ROWS = Msg("Danh sách có hơn {limit} dòng. Hãy chia thành nhiều tệp, mỗi tệp tối đa {limit} dòng.",
                    "The list has more than {limit} rows. Split it into files of at most {limit} rows.")
EMPTY = Msg("Danh sách không có dòng dữ liệu nào dưới dòng tiêu đề.", "The list has no data row below the header row.")
FORMULA = Msg("Ô {cell} chứa công thức ({formula}); hãy nhập giá trị (Dán đặc biệt > Giá trị).",
              "Cell {cell} holds a formula ({formula}); type the value instead (Paste special > Values).")


class FileRefused(Exception):
    """The whole file is refused, before its rows are checked."""

    def __init__(self, msg: Msg):
        self.msg = msg
        super().__init__(msg.both())


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_uncompressed: int
    max_rows: int


@dataclass
class RawRow:
    number: int                               # the row number in the sheet
    values: dict[str, object]
    cells: dict[str, str] = field(default_factory=dict)       # field -> cell address
    formulas: list[tuple[str | None, str, str]] = field(default_factory=list)  # (field, cell, formula)


@dataclass
class ParsedList:
    sheet: str
    header_row: int
    columns: dict[str, int]                  # field -> column index (1-based)
    headers: list[str]                       # the header row as written
    rows: list[RawRow]


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".rstrip("0").rstrip(".")


def check_container(content: bytes, limits: Limits) -> None:
    """Cheap checks on the bytes, before any spreadsheet parsing."""
    if len(content) > limits.max_bytes:
        raise FileRefused(TOO_BIG.format(size=_mb(len(content)), limit=_mb(limits.max_bytes)))
    if content.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise FileRefused(OLD_EXCEL)
    if not content.startswith(b"PK\x03\x04"):
        raise FileRefused(NOT_A_SPREADSHEET)
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        names = set(archive.namelist())
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise FileRefused(NOT_A_SPREADSHEET) from None
    if "mimetype" in names and b"opendocument" in archive.read("mimetype")[:100]:
        raise FileRefused(OPEN_DOCUMENT)
    if "xl/workbook.xml" not in names or "[Content_Types].xml" not in names:
        raise FileRefused(NOT_A_SPREADSHEET)
    if "xl/vbaProject.bin" in names:
        raise FileRefused(MACROS)
    unpacked = sum(i.file_size for i in infos)
    if unpacked > limits.max_uncompressed:
        raise FileRefused(TOO_MUCH_DATA.format(size=_mb(unpacked), limit=_mb(limits.max_uncompressed)))


def _merged_ranges(archive: zipfile.ZipFile, path: str, limit: int = 5) -> list[str]:
    """Merged ranges of a sheet, read from its XML without building the sheet."""
    found: list[str] = []
    tail = b""
    with archive.open(path) as source:
        while chunk := source.read(1 << 20):
            data = tail + chunk
            found.extend(m.decode() for m in MERGE.findall(data))
            if len(found) >= limit:
                break
            tail = data[-300:]
    return list(dict.fromkeys(found))[:limit]


def _text(value: object) -> object:
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y") if value.time() == datetime.min.time() else value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return value


def _find_header(sheet) -> tuple[int, dict[str, int], list[str]] | None:  # noqa: ANN001
    for number, row in enumerate(sheet.iter_rows(min_row=1, max_row=HEADER_SEARCH_ROWS, values_only=True), start=1):
        columns: dict[str, int] = {}
        for index, value in enumerate(row, start=1):
            name = field_for_header(value)
            if name and name != "no" and name not in columns:
                columns[name] = index
        if len(columns) >= 3:
            return number, columns, [str(v) if v is not None else "" for v in row]
    return None


def parse_list(content: bytes, limits: Limits, on_progress: Callable[[int, int], None] | None = None) -> ParsedList:
    """Check the file and return its non-empty rows as text, or raise :class:`FileRefused`."""
    check_container(content, limits)
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=False, keep_links=False)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds on a damaged file
        raise FileRefused(DAMAGED) from None
    try:
        return _parse(book, limits, on_progress)
    finally:
        book.close()


def _parse(book, limits: Limits, on_progress: Callable[[int, int], None] | None) -> ParsedList:  # noqa: ANN001
    names = [n for n in book.sheetnames if n != LOOKUP_SHEET]
    preferred = [n for n in names if n.strip().casefold() in {s.casefold() for s in DATA_SHEET.values()}]
    found = None
    for name in preferred + [n for n in names if n not in preferred]:
        sheet = book[name]
        if not hasattr(sheet, "iter_rows"):
            continue  # a chart sheet
        header = _find_header(sheet)
        if header is not None:
            found = (name, sheet, header)
            break
    if found is None:
        shown = ", ".join(f"'{n}'" for n in book.sheetnames) or "—"
        raise FileRefused(WRONG_SHEET.format(sheet=DATA_SHEET["vi"], sheet_en=DATA_SHEET["en"], sheets=shown))
    name, sheet, (header_row, columns, headers) = found
    missing = [n for n in REQUIRED_COLUMNS if n not in columns]
    if missing:
        raise FileRefused(MISSING_COLUMNS.format(
            sheet=name, columns=", ".join(FIELDS[n].label_vi for n in missing),
            columns_en=", ".join(FIELDS[n].label_en for n in missing)))
    merged = _merged_ranges(book._archive, sheet._worksheet_path)  # noqa: SLF001 - openpyxl keeps the zip here
    if merged:
        raise FileRefused(MERGED.format(sheet=name, ranges=", ".join(merged)))

    by_index = {index: field_name for field_name, index in columns.items()}
    estimate = max(0, (sheet.max_row or 0) - header_row)
    rows: list[RawRow] = []
    for number, cells in enumerate(sheet.iter_rows(min_row=header_row + 1), start=header_row + 1):
        values: dict[str, object] = {}
        addresses: dict[str, str] = {}
        formulas: list[tuple[str | None, str, str]] = []
        for cell in cells:
            value = getattr(cell, "value", None)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            field_name = by_index.get(cell.column)
            if cell.data_type == "f":
                formulas.append((field_name, cell.coordinate, str(value)[:60]))
                continue
            if field_name is not None:
                values[field_name] = _text(value)
                addresses[field_name] = cell.coordinate
        if values or formulas:
            rows.append(RawRow(number, values, addresses, formulas))
            if len(rows) > limits.max_rows:
                raise FileRefused(TOO_MANY_ROWS.format(limit=f"{limits.max_rows:,}".replace(",", ".")))
        if on_progress is not None and number % PROGRESS_EVERY == 0:
            on_progress(number - header_row, max(estimate, number - header_row))
    if not rows:
        raise FileRefused(EMPTY)
    if on_progress is not None:
        on_progress(len(rows), len(rows))
    return ParsedList(sheet=name, header_row=header_row, columns=columns, headers=headers, rows=rows)


def formula_message(cell: str, formula: str) -> Msg:
    return FORMULA.format(cell=cell, formula=formula)
