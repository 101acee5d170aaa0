"""The contact-tracing .xlsx speaks the official's language (issue 18, item 2): headers and
values (screening colours, how the declaration was made) both, Vietnamese by default."""
from __future__ import annotations

import io
import re

from openpyxl import load_workbook

from libs.common.auth import Role

from .conftest import DEMO_DISTRICT
from .test_exposure import cookie, csrf, reporting, seeded, window  # noqa: F401 - fixtures

VIETNAMESE = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹáàãéèíìóòõúùý]", re.I)


async def export_cells(client, headers) -> list[str]:  # noqa: ANN001
    token = await csrf(client, headers)
    form = {"csrf_token": token, "venue_code": "MARKET2345", "case_reference": "CG-2021-0153",
            "reason": "Ca dương tính đã đến chợ sáng 20/6", **window()}
    export = await client.post("/exposure/export", headers=headers, data=form)
    assert export.status_code == 200, export.text[:300]
    sheet = load_workbook(io.BytesIO(export.content)).active
    return [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]


async def test_a_vietnamese_official_gets_a_vietnamese_sheet(reporting, seeded, mint):
    client = reporting["reporting"]
    cells = await export_cells(client, cookie(mint, Role.HEALTH_OFFICER, DEMO_DISTRICT))
    assert {"Họ tên", "Sàng lọc", "STT", "Người tiếp xúc"} & set(cells) >= {"Họ tên", "Sàng lọc", "STT"}, cells
    assert "Đỏ" in cells and "Tự khai báo" in cells, cells
    for english in ("Full name", "Screening", "Red", "Green", "Self-declared", "Case reference", "Reason"):
        assert english not in cells, (english, cells)


async def test_an_english_official_gets_an_english_sheet(reporting, seeded, mint):
    client = reporting["reporting"]
    headers = cookie(mint, Role.HEALTH_OFFICER, DEMO_DISTRICT)
    headers["cookie"] += "; khaibao_lang=en"
    cells = await export_cells(client, headers)
    assert "Full name" in cells and "Red" in cells and "Self-declared" in cells, cells
    data = {"CG-2021-0153", "Ca dương tính đã đến chợ sáng 20/6"}
    labels = [c for c in cells if c not in data and not c.startswith(("Người", "Trần", "'", "Chợ", "Cổng"))
              and not c[0].isdigit()]  # names, units, venues and addresses are data
    assert not [c for c in labels if VIETNAMESE.search(c)], labels
