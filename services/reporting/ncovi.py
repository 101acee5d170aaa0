"""Units already on NCOVI (circular 2.2): they are not asked to deploy the city system.

The city or a district uploads the list it got from the Ministry's NCOVI app (.xlsx or
.csv; columns: unit name, address, commune, district (optional), tax code, NCOVI id —
one of the last two is required). The import is all-or-nothing: every row is checked
first (a row report in Vietnamese), and only a file without errors is saved. A unit
already imported (same NCOVI id, or same tax code) is updated, not duplicated. Communes
are written as their name or GSO code and must lie within the uploader's jurisdiction.

Helpers for the dashboards and the FHIR export:

- ``ncovi_counts(session, jurisdiction) -> {commune_path: count}``
- ``ncovi_identifiers(session, units) -> {unit_id: {"ncovi_id", "tax_code"}}`` for the
  directory's units whose name (folded) and commune match an imported one.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree, AdminUnit
from libs.common.auth import Principal, within

from .accesslog import record_access
from .directory import UnitInfo

metadata = MetaData()

ncovi_units = Table(
    "ncovi_units", metadata,
    Column("entry_id", Uuid(), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("name_key", String(300), nullable=False, index=True),
    Column("address", String(500), nullable=False),
    Column("commune_path", String(60), nullable=False, index=True),
    Column("tax_code", String(20), index=True),
    Column("ncovi_id", String(40), index=True),
    Column("import_id", Uuid(), nullable=False),
    Column("imported_by", String(120), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
)

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
TAX_CODE = re.compile(r"^\d{10}(-\d{3})?$")
NCOVI_ID = re.compile(r"^[A-Za-z0-9._-]{3,40}$")

# Header words (folded) -> field.
HEADERS = {
    "name": ("ten don vi", "don vi", "ten co so", "unit name", "name", "ten"),
    "address": ("dia chi", "address", "so nha duong"),
    "commune": ("phuong xa", "xa phuong", "phuong xa thi tran", "commune", "ward", "phuong", "xa"),
    "district": ("quan huyen", "district", "quan", "huyen"),
    "tax_code": ("ma so thue", "mst", "tax code", "ma so doanh nghiep"),
    "ncovi_id": ("ma ncovi", "ncovi id", "ma don vi ncovi", "ncovi"),
}


def fold(value: str) -> str:
    """Lower case, no diacritics (đ -> d), no punctuation, single spaces: a matching key."""
    text = unicodedata.normalize("NFD", str(value).replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return _SPACES.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


@dataclass
class RowError:
    row: int           # the row number in the file (1 = the header)
    column: str        # a field name of HEADERS, or "" for the whole row / file
    message: str       # a message id (English; the page translates it)
    params: dict = field(default_factory=dict)


@dataclass
class ParsedUnit:
    row: int
    name: str
    address: str
    commune_path: str
    tax_code: str | None
    ncovi_id: str | None


@dataclass
class ImportReport:
    rows: int = 0
    units: list[ParsedUnit] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.units)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def read_rows(filename: str, content: bytes) -> list[list[str]]:
    """The file's rows as text cells; ValueError with a message id when unreadable."""
    if len(content) > MAX_BYTES:
        raise ValueError("The file is larger than 5 MB.")
    if not content:
        raise ValueError("The file is empty.")
    name = filename.lower()
    if name.endswith(".csv") or not content.startswith(b"PK"):
        if not name.endswith(".csv"):
            raise ValueError("Upload an .xlsx or .csv file.")
        for encoding in ("utf-8-sig", "cp1258", "latin-1"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        return [[_cell(c) for c in row] for row in csv.reader(io.StringIO(text), dialect)]
    from openpyxl import load_workbook
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any unreadable workbook is the same answer
        raise ValueError("The file cannot be read as an .xlsx workbook.") from None
    try:
        sheet = book.worksheets[0]
        rows = []
        for row in sheet.iter_rows(values_only=True):
            rows.append([_cell(c) for c in row])
            if len(rows) > MAX_ROWS + 50:
                break
        return rows
    finally:
        book.close()


def _header(rows: list[list[str]]) -> tuple[int, dict[str, int]] | None:
    """The header row (within the first 10) and the column of each field."""
    for index, row in enumerate(rows[:10]):
        found: dict[str, int] = {}
        for column, text in enumerate(row):
            key = fold(text)
            for name, words in HEADERS.items():
                if name not in found and any(key == w or key.startswith(w + " ") for w in words):
                    found[name] = column
                    break
        if "name" in found and "commune" in found and ("tax_code" in found or "ncovi_id" in found):
            return index, found
    return None


def _communes(tree: AdminTree, jurisdiction: str) -> list[AdminUnit]:
    return [u for u in tree.within(jurisdiction) if not u.children and u.depth >= 2]


def _resolve_commune(tree: AdminTree, communes: list[AdminUnit], commune: str, district: str) -> AdminUnit | list | None:
    text = commune.strip()
    if text.isdigit():
        return next((u for u in communes if u.code == text.lstrip("0") or u.code == text), None)
    key = fold(text)
    bare = re.sub(r"^(phuong|xa|thi tran)\s+", "", key)
    matches = [u for u in communes if fold(u.name) == key or re.sub(r"^(phuong|xa|thi tran)\s+", "", fold(u.name)) == bare]
    if len(matches) > 1 and district:
        dkey = re.sub(r"^(quan|huyen|thanh pho|thi xa)\s+", "", fold(district))
        matches = [u for u in matches if u.parent is not None and
                   re.sub(r"^(quan|huyen|thanh pho|thi xa)\s+", "", fold(u.parent.name)) == dkey]
    if len(matches) == 1:
        return matches[0]
    return matches or None


def check_rows(rows: list[list[str]], tree: AdminTree, jurisdiction: str) -> ImportReport:
    """Every row checked; nothing saved here."""
    report = ImportReport()
    located = _header(rows)
    if located is None:
        report.errors.append(RowError(0, "", "No header row found: the file needs the columns unit name, commune, "
                                             "and tax code or NCOVI id."))
        return report
    start, columns = located
    communes = _communes(tree, jurisdiction)
    seen_ids: dict[str, int] = {}
    seen_tax: dict[str, int] = {}
    for offset, row in enumerate(rows[start + 1:], start + 2):
        values = {name: (row[col] if col < len(row) else "") for name, col in columns.items()}
        if not any(values.values()):
            continue
        report.rows += 1
        if report.rows > MAX_ROWS:
            report.errors.append(RowError(offset, "", "The file has more than %(max)s units.", {"max": MAX_ROWS}))
            break
        errors_before = len(report.errors)
        name = values.get("name", "")
        if not name:
            report.errors.append(RowError(offset, "name", "The unit name is missing."))
        elif len(name) > 300:
            report.errors.append(RowError(offset, "name", "The unit name is longer than 300 characters."))
        tax = values.get("tax_code", "").replace(" ", "") or None
        ncovi_id = values.get("ncovi_id", "").strip() or None
        if tax is None and ncovi_id is None:
            report.errors.append(RowError(offset, "tax_code", "Give the tax code or the NCOVI id."))
        if tax is not None and not TAX_CODE.match(tax):
            report.errors.append(RowError(offset, "tax_code", "A tax code has 10 digits (or 10 digits, a dash and 3)."))
        if ncovi_id is not None and not NCOVI_ID.match(ncovi_id):
            report.errors.append(RowError(offset, "ncovi_id", "The NCOVI id is not valid."))
        for key, seen, column in ((ncovi_id, seen_ids, "ncovi_id"), (tax, seen_tax, "tax_code")):
            if key is not None:
                if key in seen:
                    report.errors.append(RowError(offset, column, "The same unit is already on row %(row)s.",
                                                  {"row": seen[key]}))
                else:
                    seen[key] = offset
        commune_text = values.get("commune", "")
        commune = None
        if not commune_text:
            report.errors.append(RowError(offset, "commune", "The commune is missing."))
        else:
            found = _resolve_commune(tree, communes, commune_text, values.get("district", ""))
            if isinstance(found, list):
                report.errors.append(RowError(offset, "commune", "Several communes are called %(name)s: add the "
                                              "district column or write the commune code.", {"name": commune_text}))
            elif found is None:
                report.errors.append(RowError(offset, "commune", "%(name)s is not a commune of your area.",
                                              {"name": commune_text}))
            else:
                commune = found
        if len(report.errors) == errors_before and commune is not None:
            report.units.append(ParsedUnit(offset, name, values.get("address", "")[:500], commune.path, tax, ncovi_id))
    if not report.errors and not report.units:
        report.errors.append(RowError(0, "", "The file has no units."))
    return report


async def save_import(session: AsyncSession, principal: Principal, report: ImportReport,
                      now: datetime | None = None) -> ImportReport:
    """Save a checked report (all rows, or none when it has errors). Never commits."""
    if not report.ok:
        return report
    now = now or datetime.now(UTC)
    import_id = uuid.uuid4()
    for unit in report.units:
        conditions = []
        if unit.ncovi_id:
            conditions.append(ncovi_units.c.ncovi_id == unit.ncovi_id)
        if unit.tax_code:
            conditions.append(ncovi_units.c.tax_code == unit.tax_code)
        existing = (await session.execute(select(ncovi_units.c.entry_id, ncovi_units.c.commune_path)
                                          .where(or_(*conditions)).limit(1))).first()
        values = {"name": unit.name, "name_key": fold(unit.name), "address": unit.address,
                  "commune_path": unit.commune_path, "tax_code": unit.tax_code, "ncovi_id": unit.ncovi_id,
                  "import_id": import_id, "imported_by": principal.username[:120], "imported_at": now}
        if existing is not None and principal.covers(existing.commune_path):
            await session.execute(ncovi_units.update().where(ncovi_units.c.entry_id == existing.entry_id)
                                  .values(**values))
            report.updated += 1
        else:
            await session.execute(ncovi_units.insert().values(entry_id=uuid.uuid4(), **values))
            report.created += 1
    await record_access(session, principal, "ncovi.import", row_count=len(report.units), now=now)
    return report


async def ncovi_counts(session: AsyncSession, jurisdiction: str) -> dict[str, int]:
    """Units on NCOVI (not asked to deploy) per commune within ``jurisdiction``."""
    rows = await session.execute(select(ncovi_units.c.commune_path, func.count())
                                 .where(within(ncovi_units.c.commune_path, jurisdiction))
                                 .group_by(ncovi_units.c.commune_path))
    return {path: int(count) for path, count in rows}


@dataclass(frozen=True)
class NcoviUnit:
    name: str
    address: str
    commune_path: str
    tax_code: str | None
    ncovi_id: str | None
    imported_by: str
    imported_at: datetime


async def ncovi_units_within(session: AsyncSession, jurisdiction: str, *, limit: int = 200,
                             offset: int = 0) -> tuple[list[NcoviUnit], int]:
    condition = within(ncovi_units.c.commune_path, jurisdiction)
    total = (await session.execute(select(func.count()).select_from(ncovi_units).where(condition))).scalar_one()
    rows = await session.execute(select(ncovi_units).where(condition)
                                 .order_by(ncovi_units.c.commune_path, ncovi_units.c.name_key)
                                 .limit(limit).offset(offset))
    return [NcoviUnit(r.name, r.address, r.commune_path, r.tax_code, r.ncovi_id, r.imported_by, r.imported_at)
            for r in rows], int(total)


async def ncovi_identifiers(session: AsyncSession, units: Iterable[UnitInfo]) -> dict[UUID, dict]:
    """The NCOVI identifiers of directory units matching an imported unit (same folded name, same commune)."""
    wanted = {(fold(u.name), u.commune_path): u.unit_id for u in units}
    if not wanted:
        return {}
    rows = await session.execute(select(ncovi_units.c.name_key, ncovi_units.c.commune_path, ncovi_units.c.ncovi_id,
                                        ncovi_units.c.tax_code)
                                 .where(ncovi_units.c.name_key.in_({k for k, _ in wanted})))
    found = {}
    for key, path, ncovi_id, tax in rows:
        unit_id = wanted.get((key, path))
        if unit_id is not None:
            found[unit_id] = {"ncovi_id": ncovi_id, "tax_code": tax}
    return found
