"""The consoles as a browser uses them: session cookie, forms with their token, redirects
with a message, Vietnamese errors on the page (never a 500)."""
from __future__ import annotations

import html
import io
import re

from openpyxl import load_workbook

from libs.common.auth import Role
from services.intake.imports import create_upload
from services.intake.tests.sheets import fill_template, unit_row

from .conftest import DEMO_COMMUNE, DEMO_DISTRICT, Browser, registration, wait_upload, headers


def text_of(page) -> str:  # noqa: ANN001
    return html.unescape(re.sub(r"<[^>]+>", " ", page.text))


async def test_commune_and_district_review_in_their_consoles(intake, mint):
    client = intake["intake"]
    commune = Browser(client, mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
    district = Browser(client, mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    made = {}
    for key, kind, name, tax in (("school", "school", "Trường Tiểu học Cần Thạnh", "0301111111"),
                                 ("again", "school", "Trường Tiểu học Cần Thạnh (lần 2)", "0301111111"),
                                 ("shop", "essential_shop", "Tiệm thuốc An Khang", None),
                                 ("agency", "state_agency", "Phòng Nội vụ huyện Cần Giờ", None)):
        made[key] = (await client.post("/api/registrations", json=registration(
            "27664", kind, name, tax_code=tax))).json()

    home = await commune.get("/?status=submitted")
    assert home.status_code == 200 and text_of(home).count("Chờ duyệt") >= 4
    # The agency is shown (it is in the commune) but the district decides on it.
    agency = await commune.get(f"/registrations/{made['agency']['id']}")
    assert "Duyệt" not in re.findall(r"<button[^>]*>([^<]+)</button>", agency.text)
    assert "Phòng Văn hóa và Thông tin" in text_of(agency)

    page = await commune.get(f"/registrations/{made['again']['id']}")
    assert "Có thể trùng lặp" in text_of(page) and made["school"]["reference"] in page.text
    assert f'value="{made["school"]["reference"]}"' in page.text   # the original, suggested
    marked = await commune.post(f"/registrations/{made['again']['id']}/duplicate",
                                {"duplicate_of": made["school"]["reference"]}, csrf_from="/")
    assert marked.status_code == 303 and marked.headers["location"].endswith("?done=duplicate")
    assert "Đã đánh dấu đăng ký trùng lặp" in text_of(await commune.get(marked.headers["location"]))

    missing_reason = await commune.post(f"/registrations/{made['shop']['id']}/return", {"reason": " "})
    assert missing_reason.status_code == 422 and "Cần ghi lý do trả lại" in text_of(missing_reason)
    returned = await commune.post(f"/registrations/{made['shop']['id']}/return", {"reason": "Thiếu địa chỉ cụ thể"})
    assert returned.status_code == 303
    again = await commune.post(f"/registrations/{made['shop']['id']}/accept")
    assert again.status_code == 409 and "Đăng ký đã bị trả lại" in text_of(again)
    accepted = await commune.post(f"/registrations/{made['school']['id']}/accept")
    assert accepted.status_code == 303

    lists = await commune.get("/lists")
    assert "Đã duyệt, chưa gửi (1)" in text_of(lists)
    sent = await commune.post("/lists", csrf_from="/lists")
    assert sent.status_code == 303 and "/lists/" in sent.headers["location"]
    assert "Đã gửi danh sách lên Phòng Văn hóa và Thông tin" in text_of(await commune.get(sent.headers["location"]))
    nothing = await commune.post("/lists", csrf_from="/lists")
    assert nothing.status_code == 409 and "Chưa có đăng ký nào đã duyệt mà chưa gửi" in text_of(nothing)

    # The district: its own agency and the commune's list are ready; it forwards them.
    assert (await district.post(f"/registrations/{made['agency']['id']}/accept")).status_code == 303
    forward = await district.get("/forward")
    assert 'id="ready-count">2<' in forward.text
    none_chosen = await district.post("/forward", {"scope": "selected"}, csrf_from="/forward")
    assert none_chosen.status_code == 422 and "Hãy chọn ít nhất một đăng ký" in text_of(none_chosen)
    chosen = await district.post("/forward", {"scope": "selected", "registration": made["agency"]["id"]},
                                 csrf_from="/forward")
    assert chosen.status_code == 303
    batch = await district.get(chosen.headers["location"])
    assert "Đã chuyển danh sách lên Sở Thông tin và Truyền thông qua Kênh hỗ trợ" in text_of(batch)
    assert made["agency"]["reference"] in batch.text and made["school"]["reference"] not in batch.text
    rest = await district.post("/forward", {"scope": "all"}, csrf_from="/forward")
    assert rest.status_code == 303
    xlsx = await district.get(rest.headers["location"].split("?")[0] + ".xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in sheet[2]][0] == made["school"]["reference"]

    progress = await district.get("/progress")
    text = text_of(progress)
    assert re.search(r'id="stat-registered">4<', progress.text) and re.search(r'id="stat-forwarded">2<', progress.text)
    row = re.search(r'<tr data-path="79/787/27664">(.*?)</tr>', progress.text, re.S).group(1)
    cells = re.findall(r'class="num">(\d+)<', row)
    assert cells[:3] == ["3", "0", "3"]   # registered, awaiting review, reviewed
    assert "Cơ quan, tổ chức cấp huyện" in text


async def test_an_emailed_list_is_reviewed_in_the_console(intake, mint, template):
    client = intake["intake"]
    runtime = intake.runtime("intake")
    async with runtime.database.transaction() as session:
        mailed = await create_upload(session, scope_path=DEMO_DISTRICT, district_path=DEMO_DISTRICT, source="email",
                                     mode="review", filename="ds-binh-khanh.xlsx", sender_email="x@donvi.example",
                                     content=fill_template(template, [unit_row(1, commune="Xã Bình Khánh")]))
    district = Browser(client, mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    auth = headers(mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
    assert (await wait_upload(client, auth, str(mailed.id)))["status"] == "awaiting_review"
    page = await district.get(f"/imports/{mailed.id}")
    assert "qua mọi bước kiểm tra (1 đơn vị)" in text_of(page)
    approved = await district.post(f"/imports/{mailed.id}/approve", csrf_from=f"/imports/{mailed.id}")
    assert approved.status_code == 303
    assert (await wait_upload(client, auth, str(mailed.id)))["status"] == "imported"
    done = await district.get(f"/imports/{mailed.id}")
    assert "Đã nhập 1 đơn vị" in text_of(done) and "Công ty TNHH Số 00001" in done.text
    listing = await district.get("/imports")
    assert "x@donvi.example" in listing.text and "Đã nhập" in text_of(listing)
