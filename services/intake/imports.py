"""List uploads: a focal point uploads a filled template, or a unit e-mails it.

The upload is stored first (durable), then checked and imported by the background
worker (``worker.py`` running ``import_job.py``), which writes its progress into the upload row so that any page
or process can show it. The import is all or nothing: every row is checked (required
fields, phone, e-mail, a commune of the district, duplicates inside the file and against
existing registrations); one bad row refuses the whole file with a row-by-row report;
a good file becomes registrations in one transaction with their events.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.auth import Principal, Role, within
from libs.common.text import scrub

from .excel.reader import FileRefused, Limits, ParsedList, RawRow, formula_message, parse_list
from .models import Registration, Upload
from .review import ReviewError
from .service import Actor, existing_duplicates, unique_references
from .text import Msg, now_utc
from .validation import FIELDS, Identity, UnitDetails, identity_of, validate_unit

log = logging.getLogger(__name__)

QUEUED, VALIDATING, IMPORTING = "queued", "validating", "importing"
AWAITING_REVIEW, IMPORTED, REFUSED, DISMISSED, FAILED = "awaiting_review", "imported", "refused", "dismissed", "failed"
RUNNING = (QUEUED, VALIDATING, IMPORTING)
UPLOAD_STATUS = {
    QUEUED: Msg("Đang chờ xử lý", "Waiting"),
    VALIDATING: Msg("Đang kiểm tra", "Checking"),
    IMPORTING: Msg("Đang nhập", "Importing"),
    AWAITING_REVIEW: Msg("Chờ đầu mối xem xét", "Awaiting review"),
    IMPORTED: Msg("Đã nhập", "Imported"),
    REFUSED: Msg("Bị từ chối (có lỗi)", "Refused (errors)"),
    DISMISSED: Msg("Không tiếp nhận", "Dismissed"),
    FAILED: Msg("Lỗi hệ thống", "System error"),
}
UPLOAD_TONES = {QUEUED: "yellow", VALIDATING: "yellow", IMPORTING: "yellow", AWAITING_REVIEW: "yellow",
                IMPORTED: "green", REFUSED: "red", DISMISSED: "grey", FAILED: "red"}
PHASES = {"reading": (0, 50), "checking": (50, 90), "importing": (90, 99)}
PHASE_LABELS = {"reading": Msg("Đọc tệp", "Reading the file"), "checking": Msg("Kiểm tra từng dòng", "Checking each row"),
                "importing": Msg("Ghi vào hệ thống", "Saving")}

IN_FILE_TAX = Msg("Trùng mã số thuế với dòng {row} trong tệp", "Same tax code as row {row} of the file")
IN_FILE_NAME = Msg("Trùng tên và địa chỉ với dòng {row} trong tệp", "Same name and address as row {row} of the file")
EXISTING_TAX = Msg("Mã số thuế đã được đăng ký{ref}", "This tax code is already registered{ref_en}")
EXISTING_NAME = Msg("Đơn vị cùng tên và địa chỉ đã đăng ký{ref}", "A unit with this name and address is already registered{ref_en}")
CELL = Msg("{column} (ô {cell}): {message}", "{column_en} (cell {cell}): {message_en}")
COLUMN = Msg("{column}: {message}", "{column_en}: {message_en}")
NOT_WAITING = Msg("Danh sách này không ở trạng thái chờ xem xét", "This list is not awaiting review")
CRASHED = Msg("Hệ thống không xử lý được tệp sau nhiều lần thử. Hãy gửi lại tệp; nếu vẫn lỗi, liên hệ quận/huyện.",
              "The system could not process the file after several attempts. Send it again; if it still fails, "
              "contact the district.")


def percent(upload: Upload) -> int:
    if upload.status not in RUNNING:
        return 100
    low, high = PHASES.get(upload.phase or "", (0, 0))
    share = upload.processed_rows / upload.total_rows if upload.total_rows else 0
    return int(low + (high - low) * min(1.0, share))


def error_of(upload: Upload) -> Msg | None:
    if not upload.error:
        return None
    data = json.loads(upload.error)
    return Msg(data["vi"], data["en"])


def report_of(upload: Upload) -> list[dict]:
    """[{row, errors: [{field, vi, en}]}] of a refused upload."""
    return json.loads(upload.report) if upload.report else []


# --- use cases called by pages, the API and the mail receiver ------------------------------

async def create_upload(session: AsyncSession, *, scope_path: str, district_path: str, source: str, mode: str,
                        filename: str, content: bytes, uploaded_by: str | None = None,
                        sender_email: str | None = None, message_id: str | None = None,
                        now: datetime | None = None) -> Upload:
    now = now or now_utc()
    [reference] = await unique_references(session, Upload.reference, 1, now, "TL")
    upload = Upload(reference=reference, scope_path=scope_path, district_path=district_path, source=source,
                    mode=mode, status=QUEUED, filename=scrub(filename, 255) or "danh-sach.xlsx", size=len(content),
                    content=content, uploaded_by=uploaded_by, sender_email=sender_email, message_id=message_id,
                    received_at=now, updated_at=now)
    session.add(upload)
    return upload


def uploads_query(principal: Principal):  # noqa: ANN201
    return select(Upload).where(within(Upload.scope_path, principal.jurisdiction))


async def uploads_within(session: AsyncSession, principal: Principal, limit: int = 100) -> list[Upload]:
    """Uploads of the caller's office and below (an e-mailed list belongs to its district)."""
    rows = await session.execute(uploads_query(principal).order_by(Upload.received_at.desc()).limit(limit))
    return list(rows.scalars())


async def get_upload(session: AsyncSession, principal: Principal, upload_id: UUID) -> Upload | None:
    upload = await session.get(Upload, upload_id)
    return upload if upload is not None and principal.covers(upload.scope_path) else None


def _may_review(principal: Principal, upload: Upload) -> None:
    if principal.role not in (Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL) or upload.scope_path != principal.jurisdiction:
        raise ReviewError(Msg("Chỉ đầu mối nhận danh sách này được xử lý", "Only the office that received this list "
                                                                            "may act on it"), 403)
    if upload.status != AWAITING_REVIEW:
        raise ReviewError(NOT_WAITING)


async def approve_upload(session: AsyncSession, principal: Principal, upload: Upload, *,
                         now: datetime | None = None) -> Upload:
    """Import an e-mailed list after review: back to the worker, checked again, then imported."""
    _may_review(principal, upload)
    now = now or now_utc()
    upload.mode, upload.status, upload.phase = "import", QUEUED, None
    upload.processed_rows = upload.total_rows = 0
    upload.attempts, upload.lease_owner, upload.lease_until = 0, None, None
    upload.reviewed_by, upload.updated_at = Actor.of(principal).name, now
    return upload


async def dismiss_upload(session: AsyncSession, principal: Principal, upload: Upload, note: str, *,
                         now: datetime | None = None) -> Upload:
    _may_review(principal, upload)
    note = note.strip()
    if len(note) < 3:
        raise ReviewError(Msg("Cần ghi lý do không tiếp nhận (ít nhất 3 ký tự)",
                              "Give the reason for dismissing it (at least 3 characters)"), 422)
    now = now or now_utc()
    upload.status, upload.review_note, upload.finished_at = DISMISSED, note[:500], now
    upload.reviewed_by, upload.updated_at = Actor.of(principal).name, now
    return upload


# --- the checks ---------------------------------------------------------------------------

@dataclass
class Checked:
    units: list[UnitDetails]
    errors: dict[int, list[Msg]]
    # The refused rows with what identifies them, to report their duplicates as well.
    refused: list[tuple[RawRow, Identity]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _column_message(field_name: str | None, cell: str | None, message: Msg) -> Msg:
    if field_name is None:
        return message
    field = FIELDS[field_name]
    if cell:
        return CELL.format(column=field.label_vi, column_en=field.label_en, cell=cell, message=message.vi,
                           message_en=message.en)
    return COLUMN.format(column=field.label_vi, column_en=field.label_en, message=message.vi, message_en=message.en)


def check_rows(rows: list[RawRow], tree: AdminTree, *, district_path: str, scope_path: str) -> Checked:
    """Every row against the rules and against the other rows of the file (no database)."""
    district = tree.get(district_path)
    scope = tree.get(scope_path)
    commune_scope = scope if scope is not None and scope.depth > (district.depth if district else 1) else None
    units: list[UnitDetails] = []
    errors: dict[int, list[Msg]] = {}
    seen_tax: dict[str, int] = {}
    seen_name: dict[tuple[str, str, str], int] = {}
    refused: list[tuple[RawRow, Identity]] = []
    for row in rows:
        messages: list[Msg] = [_column_message(f, None, formula_message(cell, formula)) if f is None
                               else _column_message(f, cell, formula_message(cell, formula))
                               for f, cell, formula in row.formulas]
        details, problems = validate_unit(row.values, tree, district=district, commune_scope=commune_scope,
                                          allow_exemption=True)
        with_formula = {f for f, _, _ in row.formulas}
        for field_name, message in problems.items():
            if field_name not in with_formula:  # already reported: the cell holds a formula
                messages.append(_column_message(field_name, row.cells.get(field_name), message))
        # Duplicates are checked on what could be read, also in a row with other errors.
        identity = details if details is not None else identity_of(row.values, tree, district=district,
                                                                      commune_scope=commune_scope)
        if identity.tax_code:
            first = seen_tax.setdefault(identity.tax_code, row.number)
            if first != row.number:
                messages.append(_column_message("tax_code", row.cells.get("tax_code"),
                                                IN_FILE_TAX.format(row=first)))
        if identity.commune is not None:
            key = (identity.commune.path, identity.name_key, identity.address_key)
            first = seen_name.setdefault(key, row.number)
            if first != row.number:
                messages.append(_column_message("unit_name", row.cells.get("unit_name"), IN_FILE_NAME.format(row=first)))
        if messages:
            errors[row.number] = messages
            refused.append((row, identity))
        elif details is not None:
            units.append(details)
    return Checked(units, errors, refused)


async def check_existing(session: AsyncSession, rows: list[RawRow], units: list[UnitDetails | Identity], *,
                         scope_path: str) -> dict[int, list[Msg]]:
    """Rows that repeat a registration already in the system (by tax code, or name and address).
    A reference is named only when it lies within the uploader's area."""
    by_tax, by_name = await existing_duplicates(session, units)
    errors: dict[int, list[Msg]] = {}
    for row, unit in zip(rows, units, strict=True):
        found = by_tax.get(unit.tax_code) if unit.tax_code else None
        if found is not None:
            ref = found.reference if _covers(scope_path, found.commune_path) else None
            errors.setdefault(row.number, []).append(_column_message("tax_code", row.cells.get("tax_code"), EXISTING_TAX.format(
                ref=f" ({ref})" if ref else "", ref_en=f" ({ref})" if ref else "")))
            continue
        found = by_name.get((unit.commune.path, unit.name_key, unit.address_key)) if unit.commune else None
        if found is not None:
            ref = found.reference if _covers(scope_path, found.commune_path) else None
            errors.setdefault(row.number, []).append(_column_message("unit_name", row.cells.get("unit_name"), EXISTING_NAME.format(
                ref=f" ({ref})" if ref else "", ref_en=f" ({ref})" if ref else "")))
    return errors


def _covers(scope: str, path: str) -> bool:
    return path == scope or path.startswith(scope + "/")


def report_json(errors: dict[int, list[Msg]]) -> str:
    return json.dumps([{"row": row, "errors": [m.as_dict() for m in messages]}
                       for row, messages in sorted(errors.items())], ensure_ascii=False)


async def registrations_of_upload(session: AsyncSession, upload_id: UUID) -> list[Registration]:
    rows = await session.execute(select(Registration).where(Registration.upload_id == upload_id)
                                 .order_by(Registration.reference))
    return list(rows.scalars())


def report_workbook(upload: Upload, limits: Limits, lang: str = "vi", parsed: ParsedList | None = None) -> bytes | None:
    """The row report of a refused upload as .xlsx (the rows as sent, an error column first).
    Blocking (openpyxl): run it in a thread. None when the file itself was refused."""
    from .excel.report import row_report

    if not upload.report:
        return None
    if parsed is None:
        try:
            parsed = parse_list(upload.content, Limits(max(limits.max_bytes, upload.size),
                                                       limits.max_uncompressed, 10 ** 7))
        except FileRefused:
            return None
    errors = {item["row"]: [e["en"] if lang == "en" else e["vi"] for e in item["errors"]]
              for item in report_of(upload)}
    return row_report(parsed, errors, lang)
