"""The list template a district hands out: the columns, drop-down lists, an instructions sheet."""
from __future__ import annotations

import io
from datetime import date

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from libs.common.adminunits import AdminUnit

from ..routing import DISTRICT, EXEMPTIONS, UNIT_TYPES
from ..validation import FIELDS
from .columns import DATA_SHEET, HELP_SHEET, LOOKUP_SHEET, ORDER, TEXT_COLUMNS, WIDTHS, header, write_text

HEADER_FILL = PatternFill("solid", fgColor="0B4A5A")
REQUIRED_FILL = PatternFill("solid", fgColor="0B6477")
HEADER_FONT = Font(bold=True, color="FFFFFF")


def _column(name: str) -> str:
    return get_column_letter(("no", *ORDER).index(name) + 1)


def build_template(district: AdminUnit, *, lang: str = "vi", max_rows: int = 10_000, deadline: date | None = None,
                   inbound_address: str | None = None, form_url: str | None = None) -> bytes:
    en = lang == "en"
    book = Workbook()
    sheet = book.active
    sheet.title = DATA_SHEET["en" if en else "vi"]
    columns = ("no", *ORDER)
    for index, name in enumerate(columns, start=1):
        cell = sheet.cell(row=1, column=index, value=header(name, lang))
        required = name != "no" and FIELDS[name].required
        cell.fill = REQUIRED_FILL if required else HEADER_FILL
        cell.font = HEADER_FONT
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        sheet.column_dimensions[get_column_letter(index)].width = WIDTHS[name]
    sheet.row_dimensions[1].height = 36
    sheet.freeze_panes = "B2"
    last = max_rows + 1
    for name in TEXT_COLUMNS:
        letter = _column(name)
        for row in range(2, min(last, 2000) + 1):
            sheet[f"{letter}{row}"].number_format = "@"

    help_sheet = book.create_sheet(HELP_SHEET["en" if en else "vi"])
    # The drop-down lists read a hidden sheet (a list typed into the rule is limited to 255 characters).
    lookup = book.create_sheet(LOOKUP_SHEET)
    lookup.sheet_state = "hidden"
    types = [t.label(lang) for t in UNIT_TYPES.values()]
    communes = [c.name for c in district.children]
    reasons = [e.label(lang) for e in EXEMPTIONS.values()]
    for column, values in enumerate((types, communes, reasons, [district.name]), start=1):
        for row, value in enumerate(values, start=1):
            write_text(lookup.cell(row=row, column=column), value)

    def dropdown(name: str, source: str, prompt_vi: str, prompt_en: str) -> None:
        rule = DataValidation(type="list", formula1=source, allow_blank=True, showDropDown=False)
        rule.error = ("Chọn một giá trị trong danh sách" if not en else "Choose a value from the list")
        rule.errorTitle = "khaibao"
        rule.prompt = prompt_en if en else prompt_vi
        rule.showErrorMessage = True
        rule.showInputMessage = True
        rule.add(f"{_column(name)}2:{_column(name)}{last}")
        sheet.add_data_validation(rule)

    dropdown("unit_type", f"{LOOKUP_SHEET}!$A$1:$A${len(types)}", "Chọn loại hình đơn vị", "Choose the unit type")
    dropdown("commune", f"{LOOKUP_SHEET}!$B$1:$B${len(communes)}", f"Phường/xã của {district.name}",
             f"A commune of {district.name}")
    dropdown("exemption", f"{LOOKUP_SHEET}!$C$1:$C${len(reasons)}", "Chỉ chọn nếu không phải triển khai",
             "Only if the unit need not deploy")
    dropdown("district", f"{LOOKUP_SHEET}!$D$1:$D$1", "Có thể để trống", "May stay empty")
    venues = DataValidation(type="whole", operator="between", formula1="1", formula2="500", allow_blank=True)
    venues.error = "Số nguyên từ 1 đến 500" if not en else "A whole number from 1 to 500"
    venues.showErrorMessage = True
    venues.add(f"{_column('venue_count')}2:{_column('venue_count')}{last}")
    sheet.add_data_validation(venues)

    _instructions(help_sheet, district, en=en, max_rows=max_rows,
                  deadline=deadline, inbound_address=inbound_address, form_url=form_url)
    book.active = 0
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _instructions(sheet, district: AdminUnit, *, en: bool, max_rows: int, deadline: date | None,  # noqa: ANN001
                  inbound_address: str | None, form_url: str | None) -> None:
    sheet.column_dimensions["A"].width = 34
    sheet.column_dimensions["B"].width = 100
    title = (f"List of units joining the electronic health declaration system — {district.name}" if en else
             f"Danh sách đơn vị tham gia Hệ thống khai báo y tế điện tử — {district.name}")
    sheet["A1"] = title
    sheet["A1"].font = Font(bold=True, size=14)
    lines: list[tuple[str, str]] = []
    if en:
        lines += [
            ("How to fill", f"One unit per row on the sheet '{DATA_SHEET['en']}', from row 2; keep the header row. "
                            f"Columns marked * are required. At most {max_rows:,} rows."),
            ("", "Type values, do not paste formulas; do not merge cells; do not rename or reorder the sheet."),
            ("Who receives", "District-level bodies: the district focal point (Division of Culture and Information). "
                             "Companies, schools, markets, shops: their commune's People's Committee."),
            ("Exempt units", "Fill the last column only for a unit that need not deploy: "
                             + "; ".join(e.label_en for e in EXEMPTIONS.values()) + "."),
            ("E-mail", "With an e-mail the city DIC sends the account by e-mail; without one, through the district."),
        ]
    else:
        lines += [
            # Only the number takes the Vietnamese thousands separator (10.000), not the sentence's commas.
            ("Cách điền", f"Mỗi đơn vị một dòng trên trang '{DATA_SHEET['vi']}', từ dòng 2; giữ nguyên dòng tiêu đề. "
                          f"Cột có dấu * là bắt buộc. Tối đa {max_rows:,} dòng.".replace(f"{max_rows:,}", f"{max_rows:,}".replace(",", "."))),
            ("", "Nhập giá trị, không dán công thức; không gộp ô; không đổi tên hoặc thứ tự trang tính."),
            ("Nơi tiếp nhận", "Cơ quan, tổ chức cấp huyện: Phòng Văn hóa và Thông tin. Công ty, nhà máy, cơ sở "
                              "sản xuất kinh doanh, trường học, siêu thị, chợ, cửa hàng: UBND phường/xã nơi đơn vị đặt trụ sở."),
            ("Không phải triển khai", "Chỉ điền cột cuối cho đơn vị thuộc trường hợp: "
                                      + "; ".join(e.label_vi for e in EXEMPTIONS.values()) + "."),
            ("E-mail", "Có e-mail: Sở Thông tin và Truyền thông gửi tài khoản qua e-mail; không có: gửi qua quận/huyện."),
        ]
    for name in ORDER:
        field = FIELDS[name]
        label = field.label_en if en else field.label_vi
        hint = ("required" if field.required else "optional") if en else (
            ("bắt buộc" if field.required else "không bắt buộc") + (f" — {field.hint_vi}" if field.hint_vi else ""))
        lines.append((label, hint))
    lines.append(("Unit types" if en else "Loại hình đơn vị", "; ".join(
        f"{t.label('en' if en else 'vi')} ({'district' if t.receiver == DISTRICT else 'commune'})" if en else
        f"{t.label_vi} ({'cấp huyện' if t.receiver == DISTRICT else 'phường/xã'})" for t in UNIT_TYPES.values())))
    lines.append(("Communes" if en else "Phường/xã", "; ".join(c.name for c in district.children)))
    if deadline:
        lines.append(("Deadline" if en else "Hạn gửi", deadline.strftime("%d/%m/%Y")))
    if inbound_address:
        lines.append(("Send by e-mail" if en else "Gửi qua e-mail",
                      (f"Attach the filled file to an e-mail to {inbound_address}; the reply gives a reference or "
                       "the rows to correct.") if en else
                      (f"Đính kèm tệp đã điền vào e-mail gửi {inbound_address}; thư trả lời cho biết mã tiếp nhận "
                       "hoặc các dòng cần sửa.")))
    if form_url:
        lines.append(("One unit" if en else "Đăng ký từng đơn vị", form_url))
    for row, (label, text) in enumerate(lines, start=3):
        write_text(sheet.cell(row=row, column=1), label)
        write_text(sheet.cell(row=row, column=2), text)
        sheet.cell(row=row, column=1).font = Font(bold=True)
        sheet.cell(row=row, column=2).alignment = Alignment(wrap_text=True, vertical="top")
